// Checks deploy/kubernetes/base offline: every manifest against the Kubernetes API's own schemas
// (kubernetes-models, which bundles them compiled; unknown fields are found by watching which
// fields the schema looked at), then Warmline's rules: probes, drain, security context,
// resources, spread, disruption budgets, settings that name real flags, no secret in git.
// Usage: node check_kubernetes.mjs DIR BIN_DIR   (BIN_DIR: the build tree, for the flags' --help)
// Prints one line per problem and exits 1 if there is any.
import fs from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { flags_of, report } from "./common.mjs";

const [dir, bin_dir] = process.argv.slice(2);
if (!dir || !bin_dir) {
  console.error("usage: node check_kubernetes.mjs DIR BIN_DIR");
  process.exit(2);
}
const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

// The kinds the base uses and their schema in kubernetes-models; a new kind needs a line here.
const schemas = {
  "v1/Namespace": "IoK8sApiCoreV1Namespace",
  "v1/ConfigMap": "IoK8sApiCoreV1ConfigMap",
  "v1/Service": "IoK8sApiCoreV1Service",
  "apps/v1/Deployment": "IoK8sApiAppsV1Deployment",
  "policy/v1/PodDisruptionBudget": "IoK8sApiPolicyV1PodDisruptionBudget",
  "networking.k8s.io/v1/Ingress": "IoK8sApiNetworkingV1Ingress",
};

// What each Deployment must be: its program (for --help), replicas, readiness path, and how long
// it takes to close its WebSockets after SIGTERM and the drain delay (docs/operations.md, 3.1).
const deployments = {
  "warmline-matchmaker": { program: "services/matchmaker/matchmaker", replicas: 3, ready: "/readyz", close_s: 5 },
  "warmline-relay": { program: "services/relay/relay", replicas: 3, ready: "/readyz", close_s: 5 },
  "warmline-web": { program: "services/web/warmline-web", replicas: 2, ready: "/healthz", close_s: 1 },
};

// Validates `doc` with a compiled schema, through a Proxy that records every field the schema
// read: a field it never read is one the API does not have (a typo, or a wrong level).
function schema_check(where, doc, validate) {
  const seen = new Map(); // object -> its proxy, where it is, and the fields read from it
  const wrap = (value, at) => {
    if (value === null || typeof value !== "object") return value;
    if (!seen.has(value)) {
      const read = new Set();
      const proxy = new Proxy(value, {
        get(target, key) {
          if (typeof key !== "string") return target[key];
          read.add(key);
          return wrap(target[key], `${at}/${key}`);
        },
      });
      seen.set(value, { proxy, at, read });
    }
    return seen.get(value).proxy;
  };
  if (!validate(wrap(doc, ""))) {
    for (const e of validate.errors) problem(where, `${e.instancePath || "/"} ${e.keyword}: ${JSON.stringify(e.params)}`);
    return; // a failed validation stops early, so what it did not read says nothing
  }
  for (const [value, { at, read }] of seen)
    for (const key of Object.keys(value)) if (!read.has(key)) problem(where, `${at}/${key}: no such field`);
}

// Parse every manifest.
const docs = [];
const files = fs.readdirSync(dir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort();
for (const file of files) {
  for (const d of parseAllDocuments(fs.readFileSync(path.join(dir, file), "utf8"))) {
    if (d.errors.length) {
      for (const e of d.errors) problem(file, `YAML: ${e.message}`);
      continue;
    }
    const obj = d.toJS();
    if (obj === null) continue;
    docs.push({ file, obj, where: `${file} ${obj.kind}/${obj.metadata?.name}` });
  }
}

// The kustomization lists every manifest, and names the image the Deployments use.
const kustomization = parseAllDocuments(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"))[0].toJS();
const listed = [...(kustomization.resources ?? [])].sort();
if (JSON.stringify(listed) !== JSON.stringify(files))
  problem("kustomization.yaml", `resources ${JSON.stringify(listed)} are not the manifests ${JSON.stringify(files)}`);
const images = new Set((kustomization.images ?? []).map((i) => i.name));

for (const { obj, where } of docs) {
  const name = schemas[`${obj.apiVersion}/${obj.kind}`];
  if (!name) {
    problem(where, `kind ${obj.apiVersion}/${obj.kind} is not in this check's table`);
    continue;
  }
  const { validate } = await import(`kubernetes-models/_schemas/${name}`);
  schema_check(where, obj, validate);
}

const of_kind = (kind) => docs.filter((d) => d.obj.kind === kind);
const config_maps = new Map(of_kind("ConfigMap").map((d) => [d.obj.metadata.name, d.obj.data ?? {}]));
const matches = (selector, labels) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v) && Object.keys(selector ?? {}).length > 0;

// No secret in git: no Secret object, and nothing secret-looking in a ConfigMap.
for (const { where } of of_kind("Secret")) problem(where, "a Secret in git; make it by hand (README.md)");
for (const [cm, data] of config_maps)
  for (const [k, v] of Object.entries(data)) {
    if (/SECRET|PASSWORD|TOKEN/.test(k)) problem(`ConfigMap/${cm}`, `${k} looks like a secret; put it in warmline-secrets`);
    if (/^rediss?(-sentinel|-cluster)?:\/\/[^/@]*:[^/@]*@/.test(v)) problem(`ConfigMap/${cm}`, `${k} holds a Redis password`);
  }

for (const { obj, where } of of_kind("Deployment")) {
  const want = deployments[obj.metadata.name];
  if (!want) {
    problem(where, "not a Deployment this check knows");
    continue;
  }
  const spec = obj.spec ?? {};
  const pod = spec.template?.spec ?? {};
  const labels = spec.template?.metadata?.labels;
  if (spec.replicas !== want.replicas) problem(where, `replicas ${JSON.stringify(spec.replicas)}, want ${want.replicas}`);
  if (!matches(spec.selector?.matchLabels, labels)) problem(where, "the selector does not match the pod's labels");
  if (pod.enableServiceLinks !== false)
    problem(where, "enableServiceLinks must be false (service links are WARMLINE_* variables too)");
  if (pod.automountServiceAccountToken !== false) problem(where, "automountServiceAccountToken must be false");
  if (pod.securityContext?.runAsNonRoot !== true) problem(where, "pod securityContext.runAsNonRoot must be true");
  if (pod.securityContext?.seccompProfile?.type !== "RuntimeDefault")
    problem(where, "pod securityContext.seccompProfile must be RuntimeDefault");
  const spread = pod.topologySpreadConstraints ?? [];
  if (!spread.some((c) => c.topologyKey === "kubernetes.io/hostname" && matches(c.labelSelector?.matchLabels, labels)))
    problem(where, "no topology spread over kubernetes.io/hostname selecting its own pods");
  const services = of_kind("Service").filter((d) => matches(d.obj.spec?.selector, labels));
  if (services.length !== 1) problem(where, `${services.length} Services select its pods, want 1`);
  const budgets = of_kind("PodDisruptionBudget").filter((d) => matches(d.obj.spec?.selector?.matchLabels, labels));
  if (budgets.length !== 1) problem(where, `${budgets.length} PodDisruptionBudgets select its pods, want 1`);
  else if (budgets[0].obj.spec.maxUnavailable !== 1) problem(where, "its PodDisruptionBudget must have maxUnavailable 1");

  const containers = pod.containers ?? [];
  if (containers.length !== 1) problem(where, "want exactly one container");
  for (const c of containers) {
    const at = `${where} container ${c.name}`;
    if (!images.has(c.image)) problem(at, `image ${c.image} is not set by kustomization.yaml's images`);
    const sc = c.securityContext ?? {};
    if (sc.readOnlyRootFilesystem !== true) problem(at, "readOnlyRootFilesystem must be true");
    if (sc.allowPrivilegeEscalation !== false) problem(at, "allowPrivilegeEscalation must be false");
    if (sc.runAsNonRoot !== true) problem(at, "runAsNonRoot must be true");
    if (JSON.stringify(sc.capabilities?.drop) !== '["ALL"]' || sc.capabilities?.add) problem(at, "capabilities must drop ALL and add none");
    if (sc.seccompProfile?.type !== "RuntimeDefault") problem(at, "seccompProfile must be RuntimeDefault");
    if (c.readinessProbe?.httpGet?.path !== want.ready) problem(at, `readiness must GET ${want.ready}`);
    if (c.livenessProbe?.httpGet?.path !== "/healthz") problem(at, "liveness must GET /healthz");
    const r = c.resources ?? {};
    if (!r.requests?.cpu || !r.requests?.memory || !r.limits?.memory) problem(at, "needs cpu and memory requests and a memory limit");

    // Settings: every variable, from a ConfigMap or the Secret, must be a flag of the program.
    const flags = flags_of(path.join(bin_dir, want.program));
    const vars = new Map();
    for (const from of c.envFrom ?? []) {
      const cm = from.configMapRef?.name;
      if (!config_maps.has(cm)) problem(at, `envFrom names ConfigMap ${cm}, which is not in the base`);
      else for (const [k, v] of Object.entries(config_maps.get(cm))) vars.set(k, { cm, v });
    }
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (e.value !== undefined && /SECRET|REDIS_URL|PASSWORD/.test(e.name)) problem(at, `${e.name} must come from the Secret`);
      if (ref && ref.name !== "warmline-secrets") problem(at, `${e.name} comes from Secret ${ref.name}, not warmline-secrets`);
      vars.set(e.name, { v: e.value });
    }
    for (const [k, { cm }] of vars)
      if (!flags.has(k) && !(cm === "warmline-common" && k !== "WARMLINE_LISTEN"))
        problem(at, `${k}${cm ? ` (ConfigMap ${cm})` : ""} is not a flag of ${path.basename(want.program)} (--help)`);

    // The drain: preStop, then the drain delay, then closing; the grace period must cover them.
    const sleep = Number(c.lifecycle?.preStop?.exec?.command?.[0] === "sleep" ? c.lifecycle.preStop.exec.command[1] : NaN);
    if (!Number.isFinite(sleep)) problem(at, 'preStop must be exec ["sleep", "<seconds>"]');
    const drain_s = Number(vars.get("WARMLINE_DRAIN_DELAY_MS")?.v ?? 0) / 1000;
    const need = (Number.isFinite(sleep) ? sleep : 0) + drain_s + want.close_s;
    if (!(pod.terminationGracePeriodSeconds > need))
      problem(where, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} is not above preStop + drain + close = ${need} s`);
  }
}

// The common ConfigMap: each variable a flag of some program that reads it.
const all_flags = new Set(Object.values(deployments).flatMap((d) => [...flags_of(path.join(bin_dir, d.program))]));
for (const k of Object.keys(config_maps.get("warmline-common") ?? {}))
  if (!all_flags.has(k)) problem("ConfigMap/warmline-common", `${k} is not a flag of any service (--help)`);

// The Ingress sends each path to a Service and port that exist.
for (const { obj, where } of of_kind("Ingress"))
  for (const rule of obj.spec?.rules ?? [])
    for (const p of rule.http?.paths ?? []) {
      const b = p.backend?.service;
      const svc = of_kind("Service").find((d) => d.obj.metadata.name === b?.name);
      if (!svc) problem(where, `${p.path} goes to Service ${b?.name}, which is not in the base`);
      else if (!svc.obj.spec.ports.some((port) => port.name === b.port?.name || port.port === b.port?.number))
        problem(where, `${p.path} goes to a port Service ${b.name} does not have`);
    }

report("kubernetes", `${docs.length} objects in ${files.length} files`, problems);
