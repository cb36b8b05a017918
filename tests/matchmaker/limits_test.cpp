// The pure parts of the per-address limits: the keyed address hash and the crisis spike rule.
#include "services/matchmaker/limits.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace warmline::matchmaker;

TEST_CASE("limits: an address is counted under a keyed hash that is stable and holds no address") {
    const std::string secret(32, 's');
    const auto h = address_hash(secret, "203.0.113.9");
    CHECK(h.size() == 22);
    CHECK(h == address_hash(secret, "203.0.113.9"));
    CHECK(h != address_hash(secret, "203.0.113.10"));
    CHECK(h != address_hash(std::string(32, 't'), "203.0.113.9"));  // another deployment, another name
    CHECK(h.find("203") == std::string::npos);
}

TEST_CASE("limits: a crisis spike is many more crisis requests than the hour before, and at least the minimum") {
    std::vector<std::int64_t> minutes(65, 0);
    SUBCASE("a quiet hour, then the minimum in five minutes: a spike") {
        minutes[0] = 4;
        minutes[3] = 6;
        auto t = crisis_trend_of(minutes, 10, 3);
        CHECK(t.last_5m == 10);
        CHECK(t.usual_5m == 0);
        CHECK(t.spike);
        CHECK_FALSE(crisis_trend_of(minutes, 11, 3).spike);  // below the minimum
        CHECK_FALSE(crisis_trend_of(minutes, 0, 3).spike);   // alert off
    }
    SUBCASE("a busy hour makes the same five minutes usual") {
        for (std::size_t i = 5; i < 65; ++i) minutes[i] = 1;  // 60 in the hour: 5 per 5 minutes
        for (std::size_t i = 0; i < 5; ++i) minutes[i] = 2;   // 10 now
        auto t = crisis_trend_of(minutes, 10, 3);
        CHECK(t.last_5m == 10);
        CHECK(t.usual_5m == 5);
        CHECK_FALSE(t.spike);  // twice the usual, not three times
        minutes[0] = 7;        // 15 now: three times
        CHECK(crisis_trend_of(minutes, 10, 3).spike);
    }
    SUBCASE("minutes beyond the 65th are not counted") {
        minutes.push_back(1000);
        CHECK(crisis_trend_of(minutes, 1, 3).usual_5m == 0);
    }
}
