// The browser's warmline-e2e-v1 (services/web/static/js/e2e.js, as the page serves it) run in
// real Chromium against every value of tests/vectors/e2e_v1.json: keys imported as PKCS#8 the
// way docs/e2e.md says, the shared secret, both direction keys, every nonce, associated data and
// ciphertext byte for byte, opening each message, the receiver's rules (with its pass-over of
// messages the relay lost, as clients/e2e.cpp's receiver::pass_over) and the safety code.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ROOT } from "../harness.mjs";
import { withStack } from "../flows.mjs";

describe("the browser's E2E suite against the published vectors", () => {
  // one page that imports /js/e2e.js as the app serves it
  const suite = withStack({}, async (stack) => ({
    vectors: JSON.parse(await readFile(path.join(ROOT, "tests/vectors/e2e_v1.json"), "utf8")),
    page: await stack.open("/"),
  }));

  it("derives the shared secret, direction keys and safety code of the vectors", { timeout: 30000 }, async () => {
    const { page, vectors } = suite;
    const got = await page.evaluate(async (v) => {
      const e2e = await import("/js/e2e.js");
      const seekerPriv = await e2e.importPrivateKey(e2e.pkcs8FromRawPrivate(e2e.fromHex(v.seeker_private_key)), true);
      const listenerPriv = await e2e.importPrivateKey(e2e.pkcs8FromRawPrivate(e2e.fromHex(v.listener_private_key)), true);
      const seekerJwk = await crypto.subtle.exportKey("jwk", seekerPriv);
      const listenerJwk = await crypto.subtle.exportKey("jwk", listenerPriv);
      const b64urlToHex = (s) => e2e.toHex(e2e.fromBase64(s));
      const sharedS = await e2e.sharedSecret(seekerPriv, e2e.fromHex(v.listener_public_key));
      const sharedL = await e2e.sharedSecret(listenerPriv, e2e.fromHex(v.seeker_public_key));
      const keys = await e2e.directionKeyBytes(sharedS, v.session_id);
      return {
        supported: await e2e.x25519Supported(),
        suite: e2e.SUITE,
        seekerPublic: seekerJwk.x ? b64urlToHex(seekerJwk.x) : null,
        listenerPublic: listenerJwk.x ? b64urlToHex(listenerJwk.x) : null,
        sharedS: e2e.toHex(sharedS),
        sharedL: e2e.toHex(sharedL),
        s2l: e2e.toHex(keys.seekerToListener),
        l2s: e2e.toHex(keys.listenerToSeeker),
        codeSL: await e2e.safetyCode(e2e.fromHex(v.seeker_public_key), e2e.fromHex(v.listener_public_key)),
        codeLS: await e2e.safetyCode(e2e.fromHex(v.listener_public_key), e2e.fromHex(v.seeker_public_key)),
      };
    }, vectors);
    assert.equal(got.supported, true, "Chromium supports X25519");
    assert.equal(got.suite, vectors.suite);
    // Chromium's JWK export of an X25519 private key carries its public key as "x"
    assert.equal(got.seekerPublic, vectors.seeker_public_key, "the seeker's public key from its PKCS#8 private key");
    assert.equal(got.listenerPublic, vectors.listener_public_key, "the listener's public key from its PKCS#8 private key");
    assert.equal(got.sharedS, vectors.shared_secret);
    assert.equal(got.sharedL, vectors.shared_secret);
    assert.equal(got.s2l, vectors.key_seeker_to_listener);
    assert.equal(got.l2s, vectors.key_listener_to_seeker);
    assert.equal(got.codeSL, vectors.safety_code);
    assert.equal(got.codeLS, vectors.safety_code, "the code does not depend on the order of the keys");
  });

  it("seals every message of the vectors byte for byte, from both sides' chat keys, and opens it", { timeout: 30000 }, async () => {
    const { page, vectors } = suite;
    const results = await page.evaluate(async (v) => {
      const e2e = await import("/js/e2e.js");
      const seekerPriv = await e2e.importPrivateKey(e2e.pkcs8FromRawPrivate(e2e.fromHex(v.seeker_private_key)));
      const listenerPriv = await e2e.importPrivateKey(e2e.pkcs8FromRawPrivate(e2e.fromHex(v.listener_private_key)));
      const seeker = await e2e.chatKeys(seekerPriv, e2e.fromHex(v.listener_public_key), v.session_id, "SEEKER");
      const listener = await e2e.chatKeys(listenerPriv, e2e.fromHex(v.seeker_public_key), v.session_id, "LISTENER");
      const out = [];
      for (const m of v.messages) {
        const [from, to] = m.direction === "seeker_to_listener" ? [seeker, listener] : [listener, seeker];
        const ct = await e2e.seal(from.sendKey, v.session_id, from.sendDir, m.seq, m.plaintext);
        const opened = await e2e.open(to.receiveKey, v.session_id, to.receiveDir, m.seq, e2e.fromHex(m.ciphertext));
        // the same bytes must not open in the other direction, at another seq or in another chat
        const wrongDir = await e2e.open(from.receiveKey, v.session_id, from.receiveDir, m.seq, e2e.fromHex(m.ciphertext));
        const wrongSeq = await e2e.open(to.receiveKey, v.session_id, to.receiveDir, m.seq + 1, e2e.fromHex(m.ciphertext));
        const wrongChat = await e2e.open(to.receiveKey, v.session_id + "x", to.receiveDir, m.seq, e2e.fromHex(m.ciphertext));
        const flipped = e2e.fromHex(m.ciphertext);
        flipped[flipped.length - 1] ^= 1;
        const tampered = await e2e.open(to.receiveKey, v.session_id, to.receiveDir, m.seq, flipped);
        out.push({
          seq: m.seq, direction: m.direction, sendDir: from.sendDir,
          nonce: e2e.toHex(e2e.nonce(from.sendDir, m.seq)),
          aad: e2e.toHex(e2e.associatedData(v.session_id, from.sendDir, m.seq)),
          ciphertext: e2e.toHex(ct), opened, wrongDir, wrongSeq, wrongChat, tampered,
        });
      }
      return out;
    }, vectors);
    assert.equal(results.length, vectors.messages.length);
    assert.ok(results.some((r) => r.seq > 2 ** 32), "the vectors include a seq above 2^32");
    vectors.messages.forEach((m, i) => {
      const r = results[i];
      const what = `${m.direction} seq ${m.seq}`;
      assert.equal(r.sendDir, m.direction === "seeker_to_listener" ? 1 : 2, `${what}: direction byte`);
      assert.equal(r.nonce, m.nonce, `${what}: nonce`);
      assert.equal(r.aad, m.aad, `${what}: associated data`);
      assert.equal(r.ciphertext, m.ciphertext, `${what}: ciphertext`);
      assert.equal(r.opened, m.plaintext, `${what}: opens to the plaintext`);
      assert.equal(r.wrongDir, null, `${what}: does not open in the other direction`);
      assert.equal(r.wrongSeq, null, `${what}: does not open at another seq`);
      assert.equal(r.wrongChat, null, `${what}: does not open in another chat`);
      assert.equal(r.tampered, null, `${what}: a flipped bit does not open`);
    });
  });

  it("the receiver shows each message once and in order, passes over lost ones, and refuses forgeries and low-order keys", { timeout: 30000 }, async () => {
    const { page, vectors } = suite;
    const r = await page.evaluate(async (v) => {
      const e2e = await import("/js/e2e.js");
      const seekerPriv = await e2e.importPrivateKey(e2e.pkcs8FromRawPrivate(e2e.fromHex(v.seeker_private_key)));
      const seeker = await e2e.chatKeys(seekerPriv, e2e.fromHex(v.listener_public_key), v.session_id, "SEEKER");
      const toSeeker = v.messages.filter((m) => m.direction === "listener_to_seeker");
      const rx = new e2e.Receiver(seeker.receiveKey, v.session_id, seeker.receiveDir);
      const steps = [];
      const feed = async (m, bytes) => {
        const res = await rx.accept(m.seq, bytes || e2e.fromHex(m.ciphertext));
        steps.push({ seq: m.seq, status: res.status, text: res.text ?? null, delivered: rx.delivered });
      };
      await feed(toSeeker[1]);                 // 2 before 1: out of order
      await feed(toSeeker[0]);                 // 1: delivered
      await feed(toSeeker[0]);                 // 1 again: duplicate
      const forged = e2e.fromHex(toSeeker[1].ciphertext);
      forged[0] ^= 0x80;
      await feed(toSeeker[1], forged);         // 2 forged: dropped
      await feed(toSeeker[1]);                 // 2: delivered
      // the relay says 1..4 were lost: 3 and 4 were missed here, 1 and 2 were not
      const passed = [rx.passOver(4), rx.delivered, rx.passOver(3), rx.passOver(4), rx.delivered];
      const listenerPriv = await e2e.importPrivateKey(e2e.pkcs8FromRawPrivate(e2e.fromHex(v.listener_private_key)));
      const listener = await e2e.chatKeys(listenerPriv, e2e.fromHex(v.seeker_public_key), v.session_id, "LISTENER");
      const five = await e2e.seal(listener.sendKey, v.session_id, listener.sendDir, 5, "five");
      const four = await e2e.seal(listener.sendKey, v.session_id, listener.sendDir, 4, "four");
      await feed({ seq: 4 }, four);            // 4 after the pass-over: a duplicate, never shown
      await feed({ seq: 5 }, five);            // 5: delivered
      let lowOrder = "accepted";
      try { await e2e.sharedSecret(seekerPriv, new Uint8Array(32)); } catch { lowOrder = "refused"; }
      return { steps, passed, lowOrder, texts: toSeeker.slice(0, 2).map((m) => m.plaintext) };
    }, vectors);
    assert.deepEqual(r.steps.map((s) => [s.seq, s.status, s.delivered]), [
      [2, "out_of_order", 0], [1, "delivered", 1], [1, "duplicate", 1], [2, "forged", 1], [2, "delivered", 2],
      [4, "duplicate", 4], [5, "delivered", 5],
    ]);
    assert.deepEqual(r.passed, [2, 4, 0, 0, 4], "a pass-over counts only what was missed, and never goes back");
    assert.equal(r.steps[6].text, "five");
    assert.equal(r.steps[1].text, r.texts[0]);
    assert.equal(r.steps[4].text, r.texts[1]);
    assert.equal(r.lowOrder, "refused", "an all-zero peer key is refused");
  });
});
