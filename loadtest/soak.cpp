// warmline-soak: realistic mixed load under faults, behind scripts/soak. Seekers arrive at random
// (Poisson) in several topics and languages, listeners take and end chats and go away now and
// then, a supervisor watches the dashboard, chats run both ways through the relays (sealed, via
// chat_session), while matchmakers and relays are SIGKILLed and started again, the Redis primary
// is stalled and Sentinel fails it over. At the end it checks the invariants (no acknowledged
// message lost, none shown twice, no wedged chat, no waiting seeker dropped) and prints one JSON
// line; the time series for the chart goes to --series. The people are in soak/people.hpp, the
// faults in soak/faults.hpp, the book of record in soak/ledger.hpp.
#include "loadtest/soak/faults.hpp"
#include "loadtest/soak/people.hpp"

#include <csignal>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace warmline::soak {

// ---- a seeker ----------------------------------------------------------------------------------

void run_seeker(run_state& run, seeker_plan plan) {
    std::mt19937_64 rng(plan.seed);
    mm_link mm(run, rng());
    std::string resume;
    bool waiting = false;          // has an open request (asked, not matched)
    bool confirmed = false;        // the matchmaker said it is queued
    bool cancelled = false;
    bool dropped = false;
    bool checking = false, checked = false;
    double t_request = -1, retry_request_at = -1, retry_hello_at = -1, cancel_at = -1;
    std::string request_id;
    std::unique_ptr<chat_side> chat;
    bool had_chat = false;

    const auto hello = [&] {
        v1::ClientMessage m;
        m.mutable_seeker_hello()->set_resume_token(resume);
        return m;
    };
    const auto request = [&] {
        v1::ClientMessage m;
        m.mutable_request_chat()->set_topic(plan.topic);
        m.mutable_request_chat()->set_language(plan.language);
        request_id = mm.send(m);
        retry_request_at = -1;
    };
    const auto end_via_mm = [&](const std::string& session) {
        v1::ClientMessage m;
        m.mutable_end_chat()->set_session_id(session);
        mm.send(m);
    };
    const auto start_chat = [&](const v1::ChatStarted& c) {
        if (c.relay_ticket().empty()) return;
        if (chat && chat->session() == c.session_id()) {
            chat->renew_ticket(c.relay_ticket());
            return;
        }
        if (chat) return;  // one chat at a time: cannot happen
        bool created = false;
        auto rec = run.book->chat(c.session_id(), &created);
        {
            std::lock_guard l(rec->m);
            if (created || rec->ends_at == 0) {
                rec->t_started = now_ms();
                rec->ends_at = rec->t_started + plan.chat_ms;
                rec->ender = plan.ender;
            }
            if (rec->t_request == -1) rec->t_request = t_request;
            book_offer_latency(*run.book, *rec);
        }
        chat = std::make_unique<chat_side>(run, seeker_side, c, rec, rng());
        waiting = false;
        had_chat = true;
    };

    while (!run.quit) {
        const double now = now_ms();
        if (!mm.connected()) mm.ensure(hello);
        for (auto& m : mm.poll(chat ? 1ms : 20ms)) {
            if (m.has_seeker_welcome()) {
                const auto& w = m.seeker_welcome();
                resume = w.resume_token();
                if (checking) checked = true;
                if (!w.resumed()) {  // a new seeker: ask
                    waiting = true;
                    t_request = now_ms();
                    request();
                } else if (w.state() == v1::QUEUED || w.state() == v1::OFFERED) {
                    if (waiting) confirmed = true;
                } else if (w.state() == v1::IN_CHAT && w.has_chat()) {
                    start_chat(w.chat());
                } else if (w.state() == v1::ENDED) {
                    waiting = false;  // the chat came and went while this seeker was away
                    if (chat) chat->ended_elsewhere();
                } else if (w.state() == v1::IDLE && waiting && !cancelled) {
                    if (confirmed) {
                        dropped = true;  // queued once, never matched, never cancelled: lost its place
                        run.book->dropped_seeker();
                        std::cerr << "\nsoak: a seeker (" << plan.topic << "/" << plan.language << ", asked at "
                                  << t_request / 1000 << " s) resumed at " << now_ms() / 1000
                                  << " s as IDLE: its request is gone" << (checking ? " (final check)" : "") << "\n";
                        waiting = false;
                    } else {
                        request();  // the request never got through: ask again
                    }
                }
            } else if (m.has_request_queued() || m.has_queue_update()) {
                if (waiting) confirmed = true;
            } else if (m.has_chat_started()) {
                start_chat(m.chat_started());
            } else if (m.has_chat_ended()) {
                const auto& e = m.chat_ended();
                if (chat && chat->session() == e.session_id()) chat->ended_elsewhere();
                if (e.requeued()) {  // its listener was lost: back in line, at the front
                    waiting = true;
                    confirmed = true;
                    t_request = now_ms();
                }
            } else if (m.has_error() && m.request_id() == mm.first_id() && m.error().code() != v1::RESUME_FAILED) {
                // UNAVAILABLE (Redis away, or a change no replica confirmed): say hello again shortly
                retry_hello_at = now_ms() + 500;
                run.book->asked_again();
            } else if (m.has_error() && m.request_id() == mm.first_id() && !resume.empty()) {
                // RESUME_FAILED: the seeker's record is gone. A seeker that was waiting lost its place.
                if (checking) checked = true;
                if (waiting && confirmed && !cancelled) {
                    dropped = true;
                    run.book->dropped_seeker();
                    std::cerr << "\nsoak: a seeker (" << plan.topic << "/" << plan.language << ", asked at "
                              << t_request / 1000 << " s) could not resume at " << now_ms() / 1000
                              << " s: " << m.error().message() << (checking ? " (final check)" : "") << "\n";
                }
                waiting = false;
            } else if (m.has_error() && m.request_id() == request_id && waiting && !cancelled) {
                retry_request_at = now_ms() + 500;  // UNAVAILABLE during an outage: ask again
                run.book->asked_again();
            }
        }
        if (retry_request_at > 0 && now >= retry_request_at && mm.connected()) request();
        if (retry_hello_at > 0 && now >= retry_hello_at) {
            retry_hello_at = 0;
            mm.reopen();
        }
        if (chat) {
            chat->step(chat->done() ? 0ms : 10ms, end_via_mm);
            if (chat->wants_ticket()) mm.reopen();  // a resume brings a fresh ticket
            if (chat->done()) {
                chat.reset();
                if (!waiting) break;  // the person leaves after the chat
            }
        }
        // some give up waiting
        if (waiting && !cancelled && !chat && std::isfinite(plan.patience_ms) && now - t_request > plan.patience_ms &&
            run.talking && mm.connected()) {
            v1::ClientMessage m;
            m.mutable_cancel_request();
            mm.send(m);
            cancelled = true;
            cancel_at = now;
        }
        if (cancelled && !chat && now - cancel_at > 500) break;
        if (dropped) break;
        // at the end: is the place still kept? A fresh resume says.
        if (run.verify && waiting && !chat && !cancelled && !checking) {
            checking = true;
            mm.reopen();
        }
        if (checked && !chat) break;
    }
    if (waiting && !cancelled && !checked && !dropped && !chat) {
        run.book->dropped_seeker();  // could not even be checked: counted against the run
        std::cerr << "\nsoak: a seeker (" << plan.topic << "/" << plan.language << ", asked at " << t_request / 1000
                  << " s) could not check its place at the end\n";
    }
    (void)had_chat;
    mm.close();
    ++run.verified;
}

// ---- a listener --------------------------------------------------------------------------------

void run_listener(run_state& run, listener_plan plan) {
    std::mt19937_64 rng(plan.seed);
    mm_link mm(run, rng());
    bool want_available = true;
    bool available = false;
    double next_toggle = now_ms() + std::uniform_real_distribution<double>(8000, 20000)(rng);
    double asked_available_at = -1e9, retry_sign_in_at = -1, retry_avail_at = -1;
    std::string avail_id;  // the last SetAvailability's request id
    struct offer {
        double t_seen, accept_at, t_accept_sent = -1;
    };
    std::map<std::string, offer> offers;
    std::map<std::string, std::string> accepts;  // request id -> offer id
    std::map<std::string, std::unique_ptr<chat_side>> chats;

    const auto sign_in = [&] {
        v1::ClientMessage m;
        m.mutable_listener_sign_in()->set_token(plan.token);
        return m;
    };
    const auto set_available = [&](bool on) {
        v1::ClientMessage m;
        m.mutable_set_availability()->set_available(on);
        avail_id = mm.send(m);
        asked_available_at = now_ms();
    };
    const auto end_via_mm = [&](const std::string& session) {
        v1::ClientMessage m;
        m.mutable_end_chat()->set_session_id(session);
        mm.send(m);
    };
    const auto saw_offer = [&](const v1::Offer& o) {
        if (offers.count(o.offer_id())) return;
        const double now = now_ms();  // a person takes a moment to accept
        offers[o.offer_id()] = {now, now + std::uniform_real_distribution<double>(50, 400)(rng)};
    };
    const auto start_chat = [&](const v1::ChatStarted& c, const offer* o) {
        if (c.relay_ticket().empty()) return;
        if (auto it = chats.find(c.session_id()); it != chats.end()) {
            it->second->renew_ticket(c.relay_ticket());
            return;
        }
        auto rec = run.book->chat(c.session_id());
        {
            std::lock_guard l(rec->m);
            if (o && rec->t_offer == -1) rec->t_offer = o->t_seen;
            book_offer_latency(*run.book, *rec);
        }
        chats[c.session_id()] = std::make_unique<chat_side>(run, listener_side, c, rec, rng());
    };
    const auto profile = [&](const v1::ListenerProfile& p) {
        available = p.status() == v1::AVAILABLE;
        // set away by a missed offer or a lost process: a person who wants to listen comes back
        if (want_available && !available && now_ms() - asked_available_at > 1000) set_available(true);
    };

    while (!run.quit) {
        const double now = now_ms();
        if (!mm.connected()) mm.ensure(sign_in);
        for (auto& m : mm.poll(chats.empty() ? 20ms : 1ms)) {
            if (m.has_listener_welcome()) {
                const auto& w = m.listener_welcome();
                // the reply to a sign-in, so a new connection: accepts sent on the lost one get
                // no answer; send them again
                if (!m.request_id().empty()) {
                    accepts.clear();
                    for (auto& [_, o] : offers)
                        if (o.accept_at < 0) o.accept_at = now_ms();
                }
                for (const auto& o : w.open_offers()) saw_offer(o);
                for (const auto& c : w.open_chats()) start_chat(c, nullptr);
                asked_available_at = -1e9;  // a new view: say again what this person wants
                profile(w.profile());
            } else if (m.has_offer()) {
                saw_offer(m.offer());
            } else if (m.has_offer_closed()) {
                if (m.offer_closed().outcome() != v1::ACCEPTED) offers.erase(m.offer_closed().offer_id());
            } else if (m.has_status_changed()) {
                profile(m.status_changed().profile());
            } else if (m.has_chat_started()) {
                const offer* o = nullptr;
                if (auto a = accepts.find(m.request_id()); a != accepts.end()) {
                    if (auto it = offers.find(a->second); it != offers.end()) {
                        o = &it->second;
                        run.book->matched(o->t_accept_sent, now_ms());
                    }
                }
                start_chat(m.chat_started(), o);
                if (o) offers.erase(accepts[m.request_id()]);
                accepts.erase(m.request_id());
            } else if (m.has_chat_ended()) {
                if (auto it = chats.find(m.chat_ended().session_id()); it != chats.end()) it->second->ended_elsewhere();
            } else if (m.has_error() && m.request_id() == mm.first_id()) {
                retry_sign_in_at = now_ms() + 500;  // UNAVAILABLE: sign in again shortly
                run.book->asked_again();
            } else if (m.has_error() && m.request_id() == avail_id) {
                retry_avail_at = now_ms() + 500;  // UNAVAILABLE: say it again shortly
                run.book->asked_again();
            } else if (m.has_error()) {
                if (auto a = accepts.find(m.request_id()); a != accepts.end()) {
                    auto it = offers.find(a->second);
                    if (it != offers.end() && m.error().code() == v1::UNAVAILABLE) {
                        it->second.accept_at = now_ms() + 300;
                        run.book->asked_again();
                    }
                    else if (it != offers.end()) offers.erase(it);  // withdrawn or expired
                    accepts.erase(a);
                }
            }
        }
        if (retry_sign_in_at > 0 && now >= retry_sign_in_at) {
            retry_sign_in_at = -1;
            mm.reopen();
        }
        if (retry_avail_at > 0 && now >= retry_avail_at && mm.connected()) {
            retry_avail_at = -1;
            set_available(want_available);
        }
        for (auto& [id, o] : offers) {
            if (o.accept_at > 0 && now >= o.accept_at && mm.connected()) {
                v1::ClientMessage m;
                m.mutable_accept_offer()->set_offer_id(id);
                o.t_accept_sent = now;
                o.accept_at = -1;
                accepts[mm.send(m)] = id;
            }
        }
        if (plan.toggles && now >= next_toggle && mm.connected()) {
            want_available = !want_available;
            set_available(want_available);
            next_toggle = now + (want_available ? std::uniform_real_distribution<double>(8000, 20000)(rng)
                                                : std::uniform_real_distribution<double>(2000, 5000)(rng));
        }
        if (!run.talking && !want_available) {  // at the end everyone is there for those still waiting
            want_available = true;
            set_available(true);
        }
        bool reopen = false;
        for (auto it = chats.begin(); it != chats.end();) {
            it->second->step(chats.size() == 1 ? 8ms : 4ms, end_via_mm);
            reopen = reopen || it->second->wants_ticket();
            it = it->second->done() ? chats.erase(it) : std::next(it);
        }
        if (reopen) mm.reopen();  // a sign-in lists the open chats with fresh tickets
    }
    mm.close();
}

// ---- a supervisor ------------------------------------------------------------------------------

void run_supervisor(run_state& run, std::string token, supervisor_view& view, std::uint64_t seed) {
    mm_link mm(run, seed);
    const auto sign_in = [&] {
        v1::ClientMessage m;
        m.mutable_supervisor_sign_in()->set_token(token);
        return m;
    };
    double last = -1;
    while (!run.quit) {
        if (!mm.connected()) mm.ensure(sign_in);
        for (auto& m : mm.poll(50ms)) {
            if (!m.has_stats()) continue;
            const double now = now_ms();
            if (last >= 0) view.max_gap_s = std::max(view.max_gap_s.load(), (now - last) / 1000);
            last = now;
            ++view.snapshots;
        }
    }
    mm.close();
}

}  // namespace warmline::soak

// ---- the run -----------------------------------------------------------------------------------

namespace {

using namespace warmline::soak;
using warmline::bench::json_line;

const char* usage = R"(usage: warmline-soak --matchmakers URL,URL --listeners FILE --supervisor-token TOKEN
         --sentinels PORT,PORT,PORT --run-dir DIR --services NAME,NAME --series FILE
         [--seconds 60] [--seed N] [--master warmline] [--arrivals-per-s 0.8] [--wedge-s 20] [--drain-s 15]
Runs the soak against processes scripts/soak started (see its header); prints one JSON line.
--listeners: one listener token per line. --services: the run-directory names (NAME.pid) whose
RSS is sampled; those starting with mm or relay are the ones killed and started again.
)";

struct options {
    std::string matchmakers, listeners, supervisor_token, sentinels, run_dir, services, series, master = "warmline";
    double seconds = 60, arrivals_per_s = 0.8, wedge_s = 20, drain_s = 15;
    std::string seed;
};

std::string num_or_null(double v, int decimals) {
    if (!std::isfinite(v)) return "null";
    std::ostringstream o;
    o.setf(std::ios::fixed);
    o.precision(decimals);
    o << v;
    return o.str();
}

// A latency on the progress line: "-" when there was none to measure.
std::string shown(double ms) { return std::isfinite(ms) ? num_or_null(ms, 0) : "-"; }

int run(const options& o) {
    const std::uint64_t seed = o.seed.empty() ? std::random_device{}() : std::stoull(o.seed);
    std::cerr << "soak: seed " << seed << " (--seed " << seed << " repeats the arrivals, the people and the faults)\n";
    std::mt19937_64 rng(seed);
    ledger book(o.series);
    run_state run;
    run.matchmakers = warmline::bench::split(o.matchmakers, ',');
    run.book = &book;
    run.drain_limit_ms = o.drain_s * 1000;
    const auto services = warmline::bench::split(o.services, ',');
    std::vector<std::string> tokens;
    {
        std::ifstream in(o.listeners);
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) tokens.push_back(line);
    }
    if (tokens.empty() || run.matchmakers.empty()) throw std::invalid_argument("no listeners or no matchmakers");

    const auto plan = plan_faults(o.seconds, rng);
    for (const auto& f : plan) std::cerr << "soak: fault planned at " << f.at_ms / 1000 << " s: " << f.kind << "\n";

    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < tokens.size(); ++i)
        threads.emplace_back(run_listener, std::ref(run), listener_plan{tokens[i], i % 2 == 1, rng()});
    supervisor_view view;
    threads.emplace_back(run_supervisor, std::ref(run), o.supervisor_token, std::ref(view), rng());

    // faults, on their own thread, in the planned order
    fault_injector inject(o.run_dir, warmline::bench::split(o.sentinels, ','), o.master);
    std::vector<std::string> fault_errors;
    std::mutex fault_m;
    std::vector<std::string> killable_mm, killable_relay;
    for (const auto& s : services) {
        if (s.rfind("mm", 0) == 0) killable_mm.push_back(s);
        if (s.rfind("relay", 0) == 0) killable_relay.push_back(s);
    }
    struct fault_step {
        planned_fault f;
        std::string target;
        int ms;
    };
    std::vector<fault_step> steps;
    for (const auto& f : plan) {
        const auto& pool = f.kind == "kill_matchmaker" ? killable_mm : killable_relay;
        std::string target = f.kind == "failover" ? "sentinel" : f.kind == "redis_stall" ? "primary" : "";
        if (target.empty()) target = pool.at(std::uniform_int_distribution<std::size_t>(0, pool.size() - 1)(rng));
        const int ms = f.kind == "redis_stall" ? std::uniform_int_distribution<int>(1000, 2000)(rng)
                                               : std::uniform_int_distribution<int>(500, 1500)(rng);
        steps.push_back({f, target, ms});
    }
    std::thread faults([&] {
        for (const auto& s : steps) {
            while (now_ms() < s.f.at_ms && !run.quit) std::this_thread::sleep_for(20ms);
            if (run.quit) return;
            const double t0 = now_ms();
            std::string why;
            bool ok = false;
            if (s.f.kind == "failover") ok = inject.failover(why);
            else if (s.f.kind == "redis_stall") ok = inject.stall_primary(s.ms, why);
            else ok = inject.kill_and_restart(s.target, s.ms, why);
            const double t_fault = s.f.kind == "failover" ? now_ms() : t0;  // the failover: when Sentinel said OK
            book.fault(t_fault, now_ms(), s.f.kind, s.target);
            if (!ok) {
                std::lock_guard l(fault_m);
                fault_errors.push_back(s.f.kind + ": " + why);
            }
        }
    });

    // seekers arrive (Poisson) in topics and languages the listeners cover, English the most
    struct pair {
        const char* topic;
        const char* language;
        double weight;
    };
    const std::vector<pair> pairs{{"anxiety", "en", 3}, {"general", "en", 2}, {"grief", "en", 1},
                                  {"loneliness", "es", 1.5}, {"general", "es", 0.5}, {"work", "de", 1},
                                  {"depression", "pt-BR", 1}};
    std::vector<double> weights;
    for (const auto& p : pairs) weights.push_back(p.weight);
    std::discrete_distribution<std::size_t> which_pair(weights.begin(), weights.end());
    std::exponential_distribution<double> gap(o.arrivals_per_s / 1000);
    std::uniform_real_distribution<double> unit(0, 1);
    int seekers = 0;

    const double end_ms = o.seconds * 1000;
    double next_arrival = now_ms() + gap(rng);
    double next_sample = 0, next_check = 0;
    std::set<std::string> wedged;
    const auto watch = [&](double now) {
        if (now >= next_check) {  // wedged: lines stuck while both sides are on the relay
            next_check = now + 250;
            for (auto& c : book.chats()) {
                std::lock_guard l(c->m);
                if (c->ended || c->wedged || !c->open_since[0] || !c->open_since[1]) continue;
                const double both = std::max(*c->open_since[0], *c->open_since[1]);
                for (const auto& dir : c->lines) {
                    for (const auto& ln : dir) {
                        if (ln.opened > 0) continue;
                        if (now - std::max(ln.t_said, both) > o.wedge_s * 1000) {
                            c->wedged = true;
                            std::cerr << "\nsoak: chat " << c->session << " wedged: a line said at "
                                      << ln.t_said / 1000 << " s not opened by " << now / 1000 << " s\n";
                        }
                        break;  // the oldest unopened line decides
                    }
                }
            }
        }
        if (now >= next_sample) {
            next_sample = now + 1000;
            for (const auto& s : services) {
                const long long kib = warmline::bench::rss_kib(pid_of(o.run_dir, s));
                if (kib > 0) book.rss(now, s, kib);
            }
            const double since = now - 10000;
            std::fprintf(stderr, "\rsoak %5.0f/%.0f s | matches %lld | messages %lld | faults %lld | last 10 s: offer p99 %s ms, msg p99 %s ms   ",
                         now / 1000, o.seconds, book.matches(), book.messages(), book.faults(),
                         shown(book.offer_percentile(99, since)).c_str(),
                         shown(book.message_percentile(99, since)).c_str());
        }
    };

    // a seeker's thread is joined once it is done, so that a long run does not keep them all
    struct seeker_thread {
        std::shared_ptr<std::atomic<bool>> done;
        std::thread t;
    };
    std::vector<seeker_thread> seeker_threads;
    const auto join_finished = [&] {
        for (auto it = seeker_threads.begin(); it != seeker_threads.end();) {
            if (*it->done) {
                it->t.join();
                it = seeker_threads.erase(it);
            } else {
                ++it;
            }
        }
    };
    while (now_ms() < end_ms) {
        const double now = now_ms();
        if (now >= next_arrival) {
            next_arrival += gap(rng);
            const auto& p = pairs[which_pair(rng)];
            seeker_plan sp{p.topic, p.language};
            if (unit(rng) < 0.15) sp.patience_ms = std::uniform_real_distribution<double>(3000, 12000)(rng);
            sp.chat_ms = std::uniform_real_distribution<double>(5000, 30000)(rng);
            sp.ender = unit(rng) < 0.5 ? seeker_side : listener_side;
            sp.seed = rng();
            auto done = std::make_shared<std::atomic<bool>>(false);
            seeker_threads.push_back({done, std::thread([&run, sp, done] {
                                          run_seeker(run, sp);
                                          *done = true;
                                      })});
            ++seekers;
        }
        if (now >= next_sample) join_finished();  // once a second, before watch() moves it on
        watch(now);
        std::this_thread::sleep_for(10ms);
    }

    // the load stops: nobody says anything new; what was said must arrive
    run.talking = false;
    faults.join();
    const double drain_until = now_ms() + o.drain_s * 1000;
    while (now_ms() < drain_until) {
        bool all = true;
        for (auto& c : book.chats()) {
            std::lock_guard l(c->m);
            all = all && (c->ended || c->drained());
        }
        if (all) break;
        watch(now_ms());
        std::this_thread::sleep_for(50ms);
    }
    // every seeker still waiting checks its place with a fresh resume
    run.verify = true;
    const double verify_until = now_ms() + 10000;
    while (now_ms() < verify_until) {
        // seekers in a chat stay in it; the others leave once checked
        int in_chat = 0;
        for (auto& c : book.chats()) {
            std::lock_guard l(c->m);
            in_chat += c->ended ? 0 : 1;
        }
        if (run.verified + in_chat >= seekers) break;
        watch(now_ms());
        std::this_thread::sleep_for(50ms);
    }
    run.quit = true;
    for (auto& st : seeker_threads) st.t.join();
    for (auto& t : threads) t.join();
    std::cerr << "\n";

    // the invariants
    long long lost = 0, excused = 0, duplicates = 0, wedged_chats = 0, ended_by_warmline = 0, said = 0;
    for (auto& c : book.chats()) {
        std::lock_guard l(c->m);
        duplicates += c->duplicates;
        wedged_chats += c->wedged ? 1 : 0;
        const bool warmline_ended = c->ended && !c->end_sent;
        ended_by_warmline += warmline_ended ? 1 : 0;
        for (int d = 0; d < 2; ++d) {
            for (std::size_t i = 0; i < c->lines[d].size(); ++i) {
                ++said;
                const auto& ln = c->lines[d][i];
                if (ln.opened > 0 || i + 1 > c->acked_through[d]) continue;
                if (warmline_ended) {
                    ++excused;
                } else {
                    ++lost;
                    std::cerr << "soak: chat " << c->session << ": line " << i + 1 << " of the "
                              << (d == 0 ? "seeker" : "listener") << " (said at " << ln.t_said / 1000
                              << " s) acknowledged and never opened; the chat "
                              << (c->ended ? "ended at " + std::to_string(c->t_ended / 1000) + " s" : "is open")
                              << (c->closing ? ", closing since " + std::to_string(c->closing_since / 1000) + " s" : "")
                              << ", seeker " << (c->open_since[0] ? "on the relay" : "not on the relay")
                              << ", listener " << (c->open_since[1] ? "on the relay" : "not on the relay") << "\n";
                }
            }
        }
    }
    // a service that died on its own (not one of ours to kill and restart) is a failure too
    long long crashed = 0;
    for (const auto& s : services) {
        if (!alive(o.run_dir, s)) {
            ++crashed;
            std::cerr << "soak: " << s << " is not running at the end (see its log in the run directory)\n";
        }
    }
    const long long dropped = book.dropped();
    const double recovery = book.worst_recovery_s("failover");
    json_line j;
    j.str("scenario", "soak")
        .num("minutes", o.seconds / 60, 2)
        .integer("matches", book.matches())
        .integer("messages", book.messages())
        .integer("faults", book.faults())
        .integer("lost_acked_messages", lost)
        .integer("duplicates", duplicates)
        .integer("wedged_chats", wedged_chats)
        .integer("dropped_waiting_seekers", dropped)
        .num("offer_p99_ms", book.offer_percentile(99), 1)
        .num("msg_p99_ms", book.message_percentile(99), 1)
        .raw("failover_recovery_s", num_or_null(recovery, 2));
    std::string kinds = "{";
    for (const auto& [k, n] : book.faults_by_kind()) kinds += (kinds.size() > 1 ? "," : "") + ("\"" + k + "\":") + std::to_string(n);
    j.raw("seed", std::to_string(seed))
        .raw("faults_by_kind", kinds + "}")
        .integer("seekers", seekers)
        .integer("lines_said", said)
        .integer("chats_ended_by_warmline", ended_by_warmline)
        .integer("acked_lines_in_chats_ended_by_warmline", excused)
        .num("offer_p50_ms", book.offer_percentile(50), 1)
        .num("msg_p50_ms", book.message_percentile(50), 1)
        .integer("dashboard_snapshots", view.snapshots)
        .num("dashboard_max_gap_s", view.max_gap_s, 1)
        .integer("requests_asked_again", book.asked_again_count())
        .integer("fault_errors", static_cast<long long>(fault_errors.size()))
        .integer("processes_died", crashed);
    j.print();
    for (const auto& e : fault_errors) std::cerr << "soak: a fault could not be made: " << e << "\n";
    // recovery: NaN when the run had no failover, infinity when one never recovered
    const bool broken = lost || duplicates || wedged_chats || dropped || !fault_errors.empty() || crashed ||
                        std::isinf(recovery);
    return broken ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    options o;
    const warmline::bench::flag_setters set{
        {"matchmakers", warmline::bench::into(o.matchmakers)},
        {"listeners", warmline::bench::into(o.listeners)},
        {"supervisor-token", warmline::bench::into(o.supervisor_token)},
        {"sentinels", warmline::bench::into(o.sentinels)},
        {"master", warmline::bench::into(o.master)},
        {"run-dir", warmline::bench::into(o.run_dir)},
        {"services", warmline::bench::into(o.services)},
        {"series", warmline::bench::into(o.series)},
        {"seconds", warmline::bench::into(o.seconds)},
        {"seed", warmline::bench::into(o.seed)},
        {"arrivals-per-s", warmline::bench::into(o.arrivals_per_s)},
        {"wedge-s", warmline::bench::into(o.wedge_s)},
        {"drain-s", warmline::bench::into(o.drain_s)},
    };
    try {
        if (!warmline::bench::apply_flags(argc, argv, set, usage)) return 0;
        if (o.seconds < 30) throw std::invalid_argument("--seconds must be at least 30 (the faults need room)");
        return run(o);
    } catch (const std::exception& e) {
        std::cerr << "warmline-soak: " << e.what() << "\n";
        return 2;
    }
}
