// The soak's book of record: every chat (who said which line when, which lines the relay
// acknowledged, which the other side opened and how often), every match, every fault, and the
// time series the chart is drawn from. The invariants are computed from here and only here.
//
// Shared by every thread of warmline-soak: each chat_record has its own mutex; the ledger's
// tables and the series file have one each. Nothing here does I/O but the series file.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace warmline::soak {

// One line said in a chat. `opened` counts how often the other side showed it: 1 is right, more
// is a duplicate.
struct said_line {
    double t_said = 0;
    bool acked = false;
    int opened = 0;
    double t_opened = 0;
};

enum side : int { seeker_side = 0, listener_side = 1 };

struct chat_record {
    std::mutex m;
    std::string session;
    double t_request = -1;  // the seeker's request this chat answered
    double t_offer = -1;    // when the listener saw the offer
    double t_started = 0;
    double ends_at = 0;     // when the ender starts closing the chat
    int ender = seeker_side;
    std::vector<said_line> lines[2];       // by the side that said them
    std::uint64_t acked_through[2] = {0, 0};
    std::optional<double> open_since[2];   // each side's relay connection, welcomed since then
    bool closing = false;                  // nobody says anything new
    double closing_since = 0;
    bool end_sent = false;                 // one of our sides asked for the end
    bool ended = false;
    double t_ended = 0;
    bool wedged = false;
    int duplicates = 0;

    // Whether every line said either way has been opened on the other side.
    bool drained() const {
        for (const auto& dir : lines)
            for (const auto& l : dir)
                if (l.opened == 0) return false;
        return true;
    }
};

class ledger {
public:
    explicit ledger(const std::string& series_path) {
        series_ = std::fopen(series_path.c_str(), "w");
    }
    ~ledger() {
        if (series_) std::fclose(series_);
    }
    ledger(const ledger&) = delete;
    ledger& operator=(const ledger&) = delete;

    // The record of a session, created by whichever side hears of it first.
    std::shared_ptr<chat_record> chat(const std::string& session, bool* created = nullptr) {
        std::lock_guard l(m_);
        auto& r = chats_[session];
        if (created) *created = !r;
        if (!r) {
            r = std::make_shared<chat_record>();
            r->session = session;
        }
        return r;
    }

    std::vector<std::shared_ptr<chat_record>> chats() {
        std::lock_guard l(m_);
        std::vector<std::shared_ptr<chat_record>> out;
        for (auto& [_, r] : chats_) out.push_back(r);
        return out;
    }

    // A listener's accept answered with ChatStarted: a match. `t_accept` is when it was sent.
    void matched(double t_accept, double t_started) {
        std::lock_guard l(m_);
        matches_.push_back({t_accept, t_started});
    }
    void offer_latency(double t, double ms) {
        {
            std::lock_guard l(m_);
            offer_ms_.push_back({t, ms});
        }
        write("{\"t\":%.3f,\"ev\":\"offer\",\"ms\":%.2f}\n", t / 1000, ms);
    }
    void message_latency(double t, double ms) {
        {
            std::lock_guard l(m_);
            msg_ms_.push_back({t, ms});
            ++messages_;
        }
        write("{\"t\":%.3f,\"ev\":\"msg\",\"ms\":%.2f}\n", t / 1000, ms);
    }
    void rss(double t, const std::string& name, long long kib) {
        write("{\"t\":%.3f,\"ev\":\"rss\",\"name\":\"%s\",\"kib\":%lld}\n", t / 1000, name.c_str(), kib);
    }
    void fault(double t, double t_end, const std::string& kind, const std::string& target) {
        {
            std::lock_guard l(m_);
            faults_.push_back({t, kind});
        }
        write("{\"t\":%.3f,\"ev\":\"fault\",\"kind\":\"%s\",\"target\":\"%s\",\"until\":%.3f}\n", t / 1000,
              kind.c_str(), target.c_str(), t_end / 1000);
    }
    void dropped_seeker() {
        std::lock_guard l(m_);
        ++dropped_;
    }
    // A request of a seeker or listener answered UNAVAILABLE (Redis away, or a change no replica
    // confirmed) and asked again.
    void asked_again() {
        std::lock_guard l(m_);
        ++asked_again_;
    }
    long long asked_again_count() {
        std::lock_guard l(m_);
        return asked_again_;
    }

    long long matches() {
        std::lock_guard l(m_);
        return static_cast<long long>(matches_.size());
    }
    long long messages() {
        std::lock_guard l(m_);
        return messages_;
    }
    long long faults() {
        std::lock_guard l(m_);
        return static_cast<long long>(faults_.size());
    }
    long long dropped() {
        std::lock_guard l(m_);
        return dropped_;
    }
    std::map<std::string, int> faults_by_kind() {
        std::lock_guard l(m_);
        std::map<std::string, int> out;
        for (const auto& f : faults_) ++out[f.kind];
        return out;
    }

    // The p-th percentile (nearest rank) of the offer (or message) latencies measured at or after
    // `since` ms; NaN when there are none.
    double offer_percentile(double p, double since = 0) { return percentile(offer_ms_, p, since); }
    double message_percentile(double p, double since = 0) { return percentile(msg_ms_, p, since); }

    // From each fault of `kind` to the first match whose accept was sent after it and the first
    // line said after it and opened on the other side, whichever came later; the worst, in
    // seconds. NaN when there was no such fault, infinity when one never recovered.
    double worst_recovery_s(const std::string& kind) {
        std::vector<double> at;
        {
            std::lock_guard l(m_);
            for (const auto& f : faults_)
                if (f.kind == kind) at.push_back(f.t);
        }
        if (at.empty()) return std::numeric_limits<double>::quiet_NaN();
        const auto all = chats();
        double worst = 0;
        for (double f : at) {
            double first_match = std::numeric_limits<double>::infinity();
            {
                std::lock_guard l(m_);
                for (const auto& mt : matches_)
                    if (mt.t_accept >= f) first_match = std::min(first_match, mt.t_started);
            }
            double first_msg = std::numeric_limits<double>::infinity();
            for (const auto& c : all) {
                std::lock_guard l(c->m);
                for (const auto& dir : c->lines)
                    for (const auto& ln : dir)
                        if (ln.t_said >= f && ln.opened > 0) first_msg = std::min(first_msg, ln.t_opened);
            }
            worst = std::max(worst, (std::max(first_match, first_msg) - f) / 1000);
        }
        return worst;
    }

private:
    struct sample {
        double t, ms;
    };
    struct match {
        double t_accept, t_started;
    };
    struct fault_at {
        double t;
        std::string kind;
    };

    double percentile(const std::vector<sample>& v, double p, double since) {
        std::vector<double> x;
        {
            std::lock_guard l(m_);
            for (const auto& s : v)
                if (s.t >= since) x.push_back(s.ms);
        }
        if (x.empty()) return std::numeric_limits<double>::quiet_NaN();
        std::sort(x.begin(), x.end());
        const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(x.size())));
        return x[std::min(x.size() - 1, rank == 0 ? 0 : rank - 1)];
    }

    template <class... A>
    void write(const char* fmt, A... a) {
        std::lock_guard l(series_m_);
        if (series_) std::fprintf(series_, fmt, a...);
    }

    std::mutex m_;
    std::map<std::string, std::shared_ptr<chat_record>> chats_;
    std::vector<match> matches_;
    std::vector<sample> offer_ms_, msg_ms_;
    std::vector<fault_at> faults_;
    long long messages_ = 0;
    long long dropped_ = 0;
    long long asked_again_ = 0;
    std::mutex series_m_;
    std::FILE* series_ = nullptr;
};

}  // namespace warmline::soak
