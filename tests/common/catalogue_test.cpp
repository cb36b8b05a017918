// The catalogue: the shipped file loads; bad entries are refused with a sentence.
#include "common/catalogue.hpp"

#include <doctest/doctest.h>

using warmline::catalogue;

TEST_CASE("catalogue: the shipped deploy/catalogue.json loads with crisis resources for each language") {
    auto c = catalogue::load_file(WARMLINE_SOURCE_DIR "/deploy/catalogue.json");
    REQUIRE(c.topic("anxiety") != nullptr);
    CHECK(c.topic("astrology") == nullptr);
    REQUIRE(c.language("en") != nullptr);
    CHECK(c.language("pt-BR") != nullptr);
    for (const auto& l : c.proto().languages()) CHECK(l.crisis_resources_size() > 0);
}

TEST_CASE("catalogue: duplicates, bad tags and unknown fields are refused") {
    CHECK_THROWS_WITH_AS(catalogue::from_json(R"({"topics":[{"id":"a"},{"id":"a"}],"languages":[{"tag":"en"}]})"),
                         doctest::Contains("listed twice"), std::runtime_error);
    CHECK_THROWS_WITH_AS(catalogue::from_json(R"({"topics":[{"id":"a"}],"languages":[{"tag":"english!"}]})"),
                         doctest::Contains("BCP 47"), std::runtime_error);
    CHECK_THROWS_AS(catalogue::from_json(R"({"topics":[{"id":"a","colour":1}],"languages":[{"tag":"en"}]})"),
                    std::runtime_error);
    CHECK_THROWS_AS(catalogue::from_json(R"({"topics":[],"languages":[{"tag":"en"}]})"), std::runtime_error);
}

TEST_CASE("catalogue: crisis lines by language and region, the language's own where the region is not listed") {
    auto c = catalogue::load_file(WARMLINE_SOURCE_DIR "/deploy/catalogue.json");
    // every English speaker was once shown 112; in the United Kingdom it is Samaritans and 999
    const auto& gb = c.crisis_resources("en", "GB");
    REQUIRE(gb.size() > 0);
    CHECK(gb[0].name() == "Samaritans");
    CHECK(gb[1].phone() == "999");
    CHECK(c.crisis_resources("en", "US")[0].phone() == "988");
    CHECK(c.crisis_resources("es", "MX")[1].phone() == "911");
    CHECK(c.crisis_resources("pt-BR", "BR")[0].phone() == "188");
    // a region the language does not list, or none: the language's general lines
    CHECK(c.crisis_resources("en", "ZZ")[0].phone() == "112");
    CHECK(c.crisis_resources("en", "")[0].phone() == "112");
    CHECK(c.crisis_resources("xx", "GB").empty());
    // every listed region has lines; the same country may be listed under several languages
    for (const auto& l : c.proto().languages())
        for (const auto& r : l.regions()) CHECK(r.crisis_resources_size() > 0);
    CHECK(c.crisis_resources("es", "US")[0].phone() == "988");

    const std::string lang_with = R"({"topics":[{"id":"a"}],"languages":[{"tag":"en","regions":[)";
    CHECK_THROWS_WITH_AS(catalogue::from_json(lang_with + R"({"region":"gb","crisisResources":[{"name":"x"}]}]}]})"),
                         doctest::Contains("two-letter country code"), std::runtime_error);
    CHECK_THROWS_WITH_AS(catalogue::from_json(lang_with + R"({"region":"GB"}]}]})"),
                         doctest::Contains("has no crisis lines"), std::runtime_error);
    CHECK_THROWS_WITH_AS(catalogue::from_json(lang_with + R"({"region":"GB","crisisResources":[{"name":"x"}]},)" +
                                              R"({"region":"GB","crisisResources":[{"name":"y"}]}]}]})"),
                         doctest::Contains("listed twice"), std::runtime_error);
}

TEST_CASE("catalogue: language tag and topic id shapes") {
    CHECK(warmline::is_region_code("GB"));
    CHECK_FALSE(warmline::is_region_code("gb"));
    CHECK_FALSE(warmline::is_region_code("GBR"));
    CHECK_FALSE(warmline::is_region_code(""));
    CHECK(warmline::is_language_tag("en"));
    CHECK(warmline::is_language_tag("zh-Hant-TW"));
    CHECK_FALSE(warmline::is_language_tag("e"));
    CHECK_FALSE(warmline::is_language_tag("en-"));
    CHECK_FALSE(warmline::is_language_tag("en_US"));
    CHECK(warmline::is_topic_id("loneliness"));
    CHECK_FALSE(warmline::is_topic_id("Lonely People"));
}
