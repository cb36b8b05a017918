// Loading and validating the topic/language catalogue for common/catalogue.hpp.
#include "common/catalogue.hpp"

#include "common/codec.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace warmline {

bool is_topic_id(const std::string& id) {
    if (id.empty() || id.size() > 32) return false;
    for (char c : id)
        if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
            return false;
    return true;
}

bool is_language_tag(const std::string& tag) {
    std::stringstream ss(tag);
    std::string part;
    bool first = true;
    int parts = 0;
    while (std::getline(ss, part, '-')) {
        ++parts;
        if (first) {
            if (part.size() < 2 || part.size() > 3) return false;
            for (char c : part)
                if (!std::isalpha(static_cast<unsigned char>(c))) return false;
            first = false;
        } else {
            if (part.empty() || part.size() > 8) return false;
            for (char c : part)
                if (!std::isalnum(static_cast<unsigned char>(c))) return false;
        }
    }
    return parts > 0 && !tag.empty() && tag.back() != '-';
}

catalogue catalogue::from_json(const std::string& json, const std::string& origin) {
    catalogue c;
    std::string error;
    if (!codec::from_json(json, c.proto_, error)) throw std::runtime_error(origin + ": " + error);
    for (int i = 0; i < c.proto_.topics_size(); ++i) {
        const auto& t = c.proto_.topics(i);
        if (!is_topic_id(t.id()))
            throw std::runtime_error(origin + ": topic id '" + t.id() + "' must be 1-32 of a-z, 0-9, '_' or '-'");
        if (!c.topics_.emplace(t.id(), i).second)
            throw std::runtime_error(origin + ": topic '" + t.id() + "' is listed twice");
    }
    for (int i = 0; i < c.proto_.languages_size(); ++i) {
        const auto& l = c.proto_.languages(i);
        if (!is_language_tag(l.tag()))
            throw std::runtime_error(origin + ": language '" + l.tag() + "' is not a BCP 47 tag such as 'en' or 'pt-BR'");
        if (!c.languages_.emplace(l.tag(), i).second)
            throw std::runtime_error(origin + ": language '" + l.tag() + "' is listed twice");
        std::map<std::string, bool> regions;
        for (const auto& r : l.regions()) {
            if (!is_region_code(r.region()))
                throw std::runtime_error(origin + ": language '" + l.tag() + "': region '" + r.region() +
                                         "' is not a two-letter country code such as 'GB'");
            if (!regions.emplace(r.region(), true).second)
                throw std::runtime_error(origin + ": language '" + l.tag() + "': region '" + r.region() +
                                         "' is listed twice");
            if (r.crisis_resources_size() == 0)
                throw std::runtime_error(origin + ": language '" + l.tag() + "': region '" + r.region() +
                                         "' has no crisis lines");
        }
    }
    if (c.topics_.empty() || c.languages_.empty())
        throw std::runtime_error(origin + ": needs at least one topic and one language");
    return c;
}

const google::protobuf::RepeatedPtrField<v1::CrisisResource>& catalogue::crisis_resources(
    const std::string& tag, const std::string& region) const {
    static const google::protobuf::RepeatedPtrField<v1::CrisisResource> none;
    const v1::Language* l = language(tag);
    if (!l) return none;
    for (const auto& r : l->regions())
        if (!region.empty() && r.region() == region) return r.crisis_resources();
    return l->crisis_resources();
}

bool is_region_code(const std::string& region) {
    auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
    return region.size() == 2 && upper(region[0]) && upper(region[1]);
}

catalogue catalogue::load_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read the catalogue file '" + path + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    return from_json(ss.str(), path);
}

const v1::Topic* catalogue::topic(const std::string& id) const {
    auto it = topics_.find(id);
    return it == topics_.end() ? nullptr : &proto_.topics(it->second);
}

const v1::Language* catalogue::language(const std::string& tag) const {
    auto it = languages_.find(tag);
    return it == languages_.end() ? nullptr : &proto_.languages(it->second);
}

std::vector<std::string> catalogue::topic_ids() const {
    std::vector<std::string> out;
    for (const auto& t : proto_.topics()) out.push_back(t.id());
    return out;
}

std::vector<std::string> catalogue::language_tags() const {
    std::vector<std::string> out;
    for (const auto& l : proto_.languages()) out.push_back(l.tag());
    return out;
}

}  // namespace warmline
