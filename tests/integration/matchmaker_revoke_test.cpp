// A revoke that bites, in the store against a real Redis: the listener's chats end as for a lost
// listener (their seekers back at the front of the line), their open offers close (those
// seekers back in their places), their token stops working, and every listener script refuses
// them, including through a process that never heard of the revoke.
#include "tests/integration/matchmaker_fixture.hpp"
#include "tests/integration/matchmaker_invariants.hpp"

#include "common/crypto.hpp"

using namespace warmline;
using namespace warmline::test;

namespace {

// A listener of two seats, one in a chat and one holding an open offer.
struct busy_listener {
    admin::created l;
    std::string in_chat, session, offered, offer;

    explicit busy_listener(matchmaker_fixture& f) : l(f.listener({"anxiety"}, {"en"}, 2)), in_chat(f.seeker()) {
        f.request(in_chat, "anxiety", "en");
        auto chat = f.run(f.store->accept_offer(l.id, f.offer_of(in_chat)));
        REQUIRE(chat);
        session = chat.value->session_id;
        offered = f.seeker();
        f.request(offered, "anxiety", "en");
        offer = f.offer_of(offered);
        REQUIRE(f.offered_listener(offered) == l.id);
    }
};

}  // namespace

TEST_CASE("revoke: the listener's chats end with their seekers first in line, offers close, the token dies" *
          doctest::timeout(30)) {
    matchmaker_fixture f;
    busy_listener b(f);
    const auto& [l, in_chat, session, offered, offer] = b;
    auto waiting = f.seeker();
    f.request(waiting, "anxiety", "en");  // no room left: waits
    REQUIRE(f.seeker_state(waiting) == "queued");

    REQUIRE(f.run(f.store->admin_update(l.id, "", "", "", 0, true)));

    // the chat ended as for a lost listener; the relays are told to close both sides
    CHECK(f.field("wl:session:" + session, "state") == "ended");
    CHECK(f.field("wl:session:" + session, "ended_by") == "peer_lost");
    CHECK_FALSE(f.server.cmd({"ZSCORE", "wl:relay:ended", session}).empty());
    // the seeker of the chat first in line, then the one whose offer closed, then the rest
    CHECK(f.server.cmd({"ZRANGE", "wl:q:anxiety:en", "0", "-1"}) == in_chat + "\n" + offered + "\n" + waiting);
    CHECK(f.seeker_state(in_chat) == "queued");
    CHECK(f.seeker_state(offered) == "queued");
    // nothing of theirs is open, and their token is gone
    CHECK(f.field("wl:listener:" + l.id, "chats") == "0");
    CHECK(f.field("wl:listener:" + l.id, "offers") == "0");
    CHECK(f.field("wl:listener:" + l.id, "token").empty());
    CHECK(f.server.cmd({"EXISTS", "wl:token:" + crypto::sha256_hex(l.token)}) == "0");
    auto again = f.run(f.store->listener_sign_in(crypto::sha256_hex(l.token), "n1"));
    REQUIRE_FALSE(again);
    CHECK(again.error.code == "UNAUTHENTICATED");
    CHECK(check_invariants(f.server).empty());
}

TEST_CASE("revoke: every listener request is refused once the account is revoked, whatever is still open" *
          doctest::timeout(30)) {
    matchmaker_fixture f;
    busy_listener b(f);
    const auto& [l, s1, session, s2, oid] = b;

    // as a matchmaker that never heard of the revoke sees it: only the flag in Redis
    f.server.cmd({"HSET", "wl:listener:" + l.id, "revoked", "1"});
    const auto refused = [](const auto& r) { return !r && r.error.code == "UNAUTHENTICATED"; };
    CHECK(refused(f.run(f.store->accept_offer(l.id, oid))));
    CHECK(refused(f.run(f.store->decline_offer(l.id, oid))));
    CHECK(refused(f.run(f.store->set_availability(l.id, true))));
    CHECK(refused(f.run(f.store->set_preferences(l.id, "", "", 1))));
    CHECK(refused(f.run(f.store->end_chat("listener", l.id, session))));
    // the seeker may still end their side
    CHECK(f.run(f.store->end_chat("seeker", s1, session)));
    // and nobody is offered to a revoked listener
    CHECK(f.field("wl:offer:" + oid, "listener") == l.id);  // untouched by the refusals
}
