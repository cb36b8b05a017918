// protobuf binary and proto3 JSON encoding for common/codec.hpp.
#include "common/codec.hpp"

#include <google/protobuf/util/json_util.h>

namespace warmline::codec {

bool from_json(std::string_view json, google::protobuf::Message& msg, std::string& error) {
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = false;
    auto status = google::protobuf::util::JsonStringToMessage(std::string(json), &msg, opts);
    if (!status.ok()) {
        msg.Clear();
        error = "the text frame is not valid JSON for " + msg.GetDescriptor()->full_name() +
                ": " + std::string(status.message());
        return false;
    }
    return true;
}

bool decode(std::string_view frame, format f, google::protobuf::Message& msg, std::string& error) {
    if (f == format::json) return from_json(frame, msg, error);
    if (!msg.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
        msg.Clear();
        error = "the binary frame is not a valid protobuf " + msg.GetDescriptor()->full_name();
        return false;
    }
    return true;
}

std::string to_json(const google::protobuf::Message& msg) {
    std::string out;
    google::protobuf::util::JsonPrintOptions opts;
    opts.always_print_primitive_fields = false;
    (void)google::protobuf::util::MessageToJsonString(msg, &out, opts);
    return out;
}

std::string encode(const google::protobuf::Message& msg, format f) {
    if (f == format::json) return to_json(msg);
    return msg.SerializeAsString();
}

}  // namespace warmline::codec
