// web::site: what the browser may and may not get from warmline-web.
#include "services/web/site.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace warmline;

namespace {

struct temp_root {
    fs::path dir = fs::temp_directory_path() / ("wl-site-" + std::to_string(::getpid()) + "-" +
                                                std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    temp_root() {
        fs::create_directories(dir / "js");
        fs::create_directories(dir / ".git");
        write("index.html", "<!doctype html><title>Warmline</title>");
        write("js/app.js", "export const x = 1;");
        write("notes.md", "# not an asset");
        write(".env", "SECRET=1");
        write(".git/config", "[core]");
        std::ofstream(dir.parent_path() / "outside.html") << "outside";
    }
    ~temp_root() { fs::remove_all(dir); }
    void write(const std::string& name, const std::string& body) { std::ofstream(dir / name) << body; }
};

web::site_options options_for(const temp_root& r) {
    web::site_options o;
    o.root = r.dir.string();
    o.matchmaker_url = "ws://127.0.0.1:8090/v1/ws";
    o.catalogue_json = R"({"topics":[{"id":"anxiety","name":"Anxiety"}]})";
    o.connect_src = {"ws://127.0.0.1:8091", "wss://relay.example.org/v1/relay"};
    return o;
}

}  // namespace

TEST_CASE("site serves the app's files with their types and a strict CSP") {
    temp_root root;
    web::site s(options_for(root));
    auto index = s.get("/", "");
    CHECK(index.status == 200);
    CHECK(index.content_type == "text/html; charset=utf-8");
    CHECK(index.body == "<!doctype html><title>Warmline</title>");
    CHECK(s.get("/index.html", "").body == index.body);
    auto js = s.get("/js/app.js", "");
    CHECK(js.status == 200);
    CHECK(js.content_type == "text/javascript; charset=utf-8");
    const auto& csp = js.headers.at("Content-Security-Policy");
    CHECK(csp.find("default-src 'self'") != std::string::npos);
    CHECK(csp.find("script-src 'self';") != std::string::npos);
    CHECK(csp.find("connect-src 'self' ws://127.0.0.1:8090 ws://127.0.0.1:8091 wss://relay.example.org;") !=
          std::string::npos);
    CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
    CHECK(csp.find("unsafe") == std::string::npos);
    CHECK(js.headers.at("X-Content-Type-Options") == "nosniff");
    CHECK(js.headers.at("Referrer-Policy") == "no-referrer");
}

TEST_CASE("site is live on /healthz and ready on /readyz, having nothing to wait for") {
    temp_root root;
    web::site s(options_for(root));
    CHECK(s.get("/healthz", "").status == 200);
    const auto ready = s.get("/readyz", "");
    CHECK(ready.status == 200);
    CHECK(ready.body == R"({"status":"ready"})");
}

TEST_CASE("site names each WebSocket origin once in the CSP, as behind one front door") {
    temp_root root;
    auto o = options_for(root);
    o.matchmaker_url = "ws://127.0.0.1:8080/v1/ws";
    o.connect_src = {"ws://127.0.0.1:8080/v1/relay"};
    web::site s(std::move(o));
    CHECK(s.get("/", "").headers.at("Content-Security-Policy").find("connect-src 'self' ws://127.0.0.1:8080;") !=
          std::string::npos);
}

TEST_CASE("site never serves anything outside its root, dotfiles or unknown kinds of file") {
    temp_root root;
    web::site s(options_for(root));
    for (const char* path : {"/../outside.html", "/js/../../outside.html", "/%2e%2e/outside.html", "/.env",
                             "/.git/config", "/notes.md", "/js/", "/js", "//index.html", "/index.html/"}) {
        CAPTURE(path);
        auto r = s.get(path, "");
        CHECK(r.status == 404);
        CHECK(r.body.find("outside") == std::string::npos);
        CHECK(r.headers.count("Content-Security-Policy") == 1);
    }
    CHECK(s.file_count() == 3);  // index.html, js/app.js, config.json
}

TEST_CASE("config.json tells the page where the matchmaker is and what the catalogue holds") {
    temp_root root;
    web::site s(options_for(root));
    auto r = s.get("/config.json", "");
    CHECK(r.status == 200);
    CHECK(r.content_type == "application/json");
    CHECK(r.body ==
          R"({"matchmakerUrl":"ws://127.0.0.1:8090/v1/ws","catalogue":{"topics":[{"id":"anxiety","name":"Anxiety"}]}})");
}

TEST_CASE("site answers a matching If-None-Match with 304 and no body") {
    temp_root root;
    web::site s(options_for(root));
    auto first = s.get("/js/app.js", "");
    const auto etag = first.headers.at("ETag");
    CHECK(first.headers.at("Cache-Control") == "no-cache");
    auto again = s.get("/js/app.js", etag);
    CHECK(again.status == 304);
    CHECK(again.body.empty());
    CHECK(s.get("/js/app.js", "\"something else\"").status == 200);
    CHECK(s.get("/index.html", etag).status == 200);  // another file's tag does not match
}

TEST_CASE("site refuses other methods and every WebSocket upgrade") {
    temp_root root;
    web::site s(options_for(root));
    boost::asio::io_context ioc;
    net::http_request post;
    post.method = "POST";
    post.path = "/";
    auto res = boost::asio::co_spawn(ioc, s.on_http(post), boost::asio::use_future);
    auto up = boost::asio::co_spawn(ioc, s.on_upgrade(post), boost::asio::use_future);
    ioc.run();
    auto r = res.get();
    CHECK(r.status == 405);
    CHECK(r.headers.at("Allow") == "GET");
    auto u = up.get();
    REQUIRE(u.has_value());
    CHECK(u->status == 404);
}

TEST_CASE("site refuses to start without index.html or with a matchmaker URL that is not a WebSocket") {
    temp_root root;
    auto o = options_for(root);
    o.matchmaker_url = "http://127.0.0.1:8090/v1/ws";
    CHECK_THROWS_AS(web::site{o}, std::invalid_argument);
    o = options_for(root);
    o.connect_src = {"ws://evil.example.org; script-src *"};
    CHECK_THROWS_AS(web::site{o}, std::invalid_argument);
    fs::remove(root.dir / "index.html");
    CHECK_THROWS_AS(web::site{options_for(root)}, std::runtime_error);
}
