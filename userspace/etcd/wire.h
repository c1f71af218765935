// What etcd's v3 JSON gateway says, as C++ values, and the pure decoding of
// its JSON (no I/O here, so it is unit-tested on captured lines). Wire facts
// (measured on etcd 3.4.23): keys and values are base64, int64 fields are JSON
// strings, fields at their default value are omitted (a PUT event has no
// "type", a failed txn has no "succeeded"), a unary error is
// {"error","code","message"} with a non-200 status, and a streamed error is a
// {"error":{"grpc_code","http_code","message"}} line inside a 200 stream.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/errors.h"

namespace smtpfence::etcd {

// gRPC status codes the client acts on.
inline constexpr int kCodeOutOfRange = 11;  // a revision that was compacted
inline constexpr int kCodeUnavailable = 14;
inline constexpr int kCodeUnauthenticated = 16;  // an expired or unknown token

// A failed store operation: what was asked, which endpoint answered (or did
// not), and etcd's own message. grpc_code is 0 for a transport failure (no
// answer at all), else the gRPC status code etcd reported.
struct StoreError : RuntimeError {
    StoreError(const std::string& message, int grpc_code, std::string endpoint)
        : RuntimeError(message), grpc_code(grpc_code), endpoint(std::move(endpoint)) {}
    int grpc_code;
    std::string endpoint;
};

struct KeyValue {
    std::string key, value;
    int64_t create_revision = 0, mod_revision = 0, version = 0, lease = 0;
    bool operator==(const KeyValue&) const = default;
};

struct RangeResult {
    int64_t revision = 0;  // the store revision every key was read at
    std::vector<KeyValue> kvs;
};

struct WatchEvent {
    enum class Type { Put, Delete };
    Type type = Type::Put;
    KeyValue kv;  // for a delete: the key and the deletion's mod_revision, no value
    std::optional<KeyValue> prev_kv;
};

// One response of a watch, to be applied as a unit. No events: a progress
// notification (everything up to `revision` has been delivered).
struct WatchResponse {
    int64_t revision = 0;  // header.revision
    std::vector<WatchEvent> events;
};

// One line of the watch stream, classified.
struct WatchLine {
    enum class Kind {
        Created,   // the watch is registered; carries no events
        Response,  // events or a progress notification
        Canceled,  // compact_revision > 0 when cancelled for compaction
        Error,     // a gRPC error inside the stream: the stream is over
    };
    Kind kind = Kind::Response;
    WatchResponse response;
    int64_t compact_revision = 0;
    int grpc_code = 0;
    std::string message;  // the error's or the cancel reason
};

// An int64 the gateway sent as a string (or, defensively, as a number);
// missing means the proto default, 0.
int64_t json_int(const nlohmann::json& object, const char* field);

KeyValue parse_kv(const nlohmann::json& kv);

// Throws RuntimeError on a line that is not gateway JSON.
WatchLine parse_watch_line(const std::string& line);

// The error a non-200 unary answer (or a streamed {"error":{…}}) carries:
// its gRPC code and message. nullopt when the body holds no error.
struct GatewayError {
    int grpc_code = 0;
    std::string message;
};
std::optional<GatewayError> parse_gateway_error(const nlohmann::json& body);

// The end of a prefix range: the prefix with its last byte below 0xff
// incremented. "" and all-0xff prefixes mean "every key" ("\0").
std::string prefix_range_end(const std::string& prefix);

}  // namespace smtpfence::etcd
