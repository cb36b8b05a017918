// The one envelope format of every WebSocket: a binary frame carries protobuf binary, a text
// frame carries the proto3 JSON mapping of the same message. Replies go back in the format the
// request came in, so a browser or any WebSocket tool can speak JSON.
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

namespace warmline::codec {

enum class format { binary, json };

// Parse a frame into `msg`. On failure returns false and sets `error` to a sentence for the
// client who sent it (it may quote the parser's position; it is never logged).
bool decode(std::string_view frame, format f, google::protobuf::Message& msg, std::string& error);

// Serialise in the given format. JSON uses the standard lowerCamelCase field names.
std::string encode(const google::protobuf::Message& msg, format f);

// JSON of any message, e.g. for HTTP APIs.
std::string to_json(const google::protobuf::Message& msg);
// Parse JSON into msg (unknown fields refused); false and `error` on failure.
bool from_json(std::string_view json, google::protobuf::Message& msg, std::string& error);

}  // namespace warmline::codec
