// warmline-client: a small interactive terminal client for trying Warmline by hand, as a seeker
// or a listener. It speaks the JSON form of the protocol and prints what the server sends.
//   warmline-client [--url ws://127.0.0.1:8090/v1/ws] seeker [--resume TOKEN]
//   warmline-client [--url ...] listener --token TOKEN
#include "common/ws_client.hpp"

#include <poll.h>
#include <unistd.h>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using warmline::net::ws_client;

namespace {

struct url_parts {
    std::string host;
    std::uint16_t port = 0;
    std::string target;
};

url_parts parse_url(const std::string& url) {
    url_parts u;
    std::string rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
    auto slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    u.target = slash == std::string::npos ? "/v1/ws" : rest.substr(slash);
    auto colon = hostport.rfind(':');
    u.host = hostport.substr(0, colon);
    u.port = static_cast<std::uint16_t>(std::stoi(hostport.substr(colon + 1)));
    return u;
}

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

int next_id = 0;
std::string request(const std::string& body) { return R"({"requestId":"c)" + std::to_string(++next_id) + "\"," + body + "}"; }

const char* seeker_help = R"(seeker commands:
  request TOPIC LANGUAGE [crisis] [prefer HANDLE]   ask for someone to talk to
  cancel                                           withdraw the request
  end SESSION                                      end the chat
  rate SESSION STARS [block] [comment words...]    after the chat
  quit
)";
const char* listener_help = R"(listener commands:
  available | away                 toggle availability
  accept OFFER | decline OFFER     answer an offer
  prefs TOPICS LANGUAGES MAX       narrow what you take now (comma lists, '-' for all)
  end SESSION                      end a chat
  quit
)";

std::string list_json(const std::string& csv) {
    if (csv == "-") return "[]";
    std::string out = "[";
    std::stringstream ss(csv);
    for (std::string x; std::getline(ss, x, ',');) out += (out.size() > 1 ? "," : "") + quoted(x);
    return out + "]";
}

// Turn a typed line into a request, or "" if it is not one.
std::string command(bool seeker, const std::string& line) {
    std::stringstream ss(line);
    std::vector<std::string> w;
    for (std::string x; ss >> x;) w.push_back(x);
    if (w.empty()) return "";
    if (seeker) {
        if (w[0] == "request" && w.size() >= 3) {
            std::string body = R"("requestChat":{"topic":)" + quoted(w[1]) + R"(,"language":)" + quoted(w[2]);
            for (std::size_t i = 3; i < w.size(); ++i) {
                if (w[i] == "crisis") body += R"(,"crisis":true)";
                if (w[i] == "prefer" && i + 1 < w.size()) body += R"(,"preferredListener":)" + quoted(w[++i]);
            }
            return request(body + "}");
        }
        if (w[0] == "cancel") return request(R"("cancelRequest":{})");
        if (w[0] == "end" && w.size() == 2) return request(R"("endChat":{"sessionId":)" + quoted(w[1]) + "}");
        if (w[0] == "rate" && w.size() >= 3) {
            bool block = false;
            std::string comment;
            for (std::size_t i = 3; i < w.size(); ++i) {
                if (w[i] == "block") block = true;
                else comment += (comment.empty() ? "" : " ") + w[i];
            }
            return request(R"("rateChat":{"sessionId":)" + quoted(w[1]) + R"(,"stars":)" + w[2] +
                           R"(,"blockListener":)" + (block ? "true" : "false") + R"(,"comment":)" + quoted(comment) + "}");
        }
        std::cout << seeker_help;
        return "";
    }
    if (w[0] == "available" || w[0] == "away")
        return request(R"("setAvailability":{"available":)" + std::string(w[0] == "available" ? "true" : "false") + "}");
    if ((w[0] == "accept" || w[0] == "decline") && w.size() == 2)
        return request("\"" + w[0] + R"(Offer":{"offerId":)" + quoted(w[1]) + "}");
    if (w[0] == "end" && w.size() == 2) return request(R"("endChat":{"sessionId":)" + quoted(w[1]) + "}");
    if (w[0] == "prefs" && w.size() == 4)
        return request(R"("setPreferences":{"topics":)" + list_json(w[1]) + R"(,"languages":)" + list_json(w[2]) +
                       R"(,"maxChats":)" + w[3] + "}");
    std::cout << listener_help;
    return "";
}

}  // namespace

int main(int argc, char** argv) {
    std::string url = "ws://127.0.0.1:8090/v1/ws", mode, token, resume;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--url" && i + 1 < argc) url = argv[++i];
        else if (a == "--token" && i + 1 < argc) token = argv[++i];
        else if (a == "--resume" && i + 1 < argc) resume = argv[++i];
        else if (a == "seeker" || a == "listener") mode = a;
    }
    if (mode.empty() || (mode == "listener" && token.empty())) {
        std::cerr << "usage: warmline-client [--url ws://host:port/v1/ws] seeker [--resume TOKEN]\n"
                     "       warmline-client [--url ...] listener --token TOKEN\n";
        return 2;
    }
    try {
        auto u = parse_url(url);
        ws_client ws;
        ws.connect(u.host, u.port, u.target);
        bool seeker = mode == "seeker";
        ws.send_text(seeker ? request(R"("seekerHello":{"resumeToken":)" + quoted(resume) + "}")
                            : request(R"("listenerSignIn":{"token":)" + quoted(token) + "}"));
        std::cout << (seeker ? seeker_help : listener_help) << std::flush;
        while (true) {
            while (auto m = ws.read(std::chrono::milliseconds(50))) std::cout << "<< " << m->data << std::endl;
            pollfd p{STDIN_FILENO, POLLIN, 0};
            if (poll(&p, 1, 50) > 0) {
                std::string line;
                if (!std::getline(std::cin, line) || line == "quit") break;
                std::string req = command(seeker, line);
                if (!req.empty()) {
                    std::cout << ">> " << req << std::endl;
                    ws.send_text(req);
                }
            }
        }
        ws.close();
    } catch (const std::exception& e) {
        std::cerr << "warmline-client: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
