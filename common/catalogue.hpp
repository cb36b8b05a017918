// The topics and languages Warmline offers, loaded from deploy/catalogue.json (the JSON form of
// warmline.v1.Catalogue) by every service at start. Anything not in it is refused by name.
#pragma once

#include "warmline/v1/common.pb.h"

#include <map>
#include <string>
#include <vector>

namespace warmline {

class catalogue {
public:
    // Throws std::runtime_error with a sentence (file, entry, what is wrong).
    static catalogue load_file(const std::string& path);
    static catalogue from_json(const std::string& json, const std::string& origin = "catalogue");

    const v1::Topic* topic(const std::string& id) const;
    const v1::Language* language(const std::string& tag) const;
    std::vector<std::string> topic_ids() const;
    std::vector<std::string> language_tags() const;
    // The crisis lines for a speaker of `tag` in `region` (ISO 3166-1 alpha-2, or ""): the
    // region's, when the language lists it, else the language's general ones (empty for an
    // unknown language).
    const google::protobuf::RepeatedPtrField<v1::CrisisResource>& crisis_resources(const std::string& tag,
                                                                                   const std::string& region) const;
    const v1::Catalogue& proto() const { return proto_; }

private:
    v1::Catalogue proto_;
    std::map<std::string, int> topics_;
    std::map<std::string, int> languages_;
};

// BCP 47 shape check: a 2-3 letter primary subtag, then 1-8 character alphanumeric subtags.
bool is_language_tag(const std::string& tag);
// Topic ids: 1-32 of [a-z0-9_-].
bool is_topic_id(const std::string& id);
// A region code: two upper-case ASCII letters (ISO 3166-1 alpha-2).
bool is_region_code(const std::string& region);

}  // namespace warmline
