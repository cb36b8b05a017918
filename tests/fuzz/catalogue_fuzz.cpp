// libFuzzer: the catalogue loader (common/catalogue.hpp). Bad JSON or a bad entry is refused with
// a sentence (std::runtime_error), never a crash; what loads has only valid ids and tags.
#include "common/catalogue.hpp"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    try {
        const auto cat = warmline::catalogue::from_json(in, "fuzz");
        for (const auto& id : cat.topic_ids())
            if (!warmline::is_topic_id(id) || !cat.topic(id)) std::abort();
        for (const auto& tag : cat.language_tags())
            if (!warmline::is_language_tag(tag) || !cat.language(tag)) std::abort();
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()).empty()) std::abort();
    }
    return 0;
}
