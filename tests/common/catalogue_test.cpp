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

TEST_CASE("catalogue: language tag and topic id shapes") {
    CHECK(warmline::is_language_tag("en"));
    CHECK(warmline::is_language_tag("zh-Hant-TW"));
    CHECK_FALSE(warmline::is_language_tag("e"));
    CHECK_FALSE(warmline::is_language_tag("en-"));
    CHECK_FALSE(warmline::is_language_tag("en_US"));
    CHECK(warmline::is_topic_id("loneliness"));
    CHECK_FALSE(warmline::is_topic_id("Lonely People"));
}
