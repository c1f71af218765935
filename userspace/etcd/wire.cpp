#include "etcd/wire.h"

#include <nlohmann/json.hpp>

#include "etcd/base64.h"

namespace smtpfence::etcd {

using nlohmann::json;

int64_t json_int(const json& object, const char* field) {
    auto it = object.find(field);
    if (it == object.end() || it->is_null()) return 0;
    if (it->is_number_integer()) return it->get<int64_t>();
    if (it->is_string()) {
        const std::string& s = it->get_ref<const std::string&>();
        try {
            size_t used = 0;
            int64_t v = std::stoll(s, &used);
            if (used == s.size()) return v;
        } catch (const std::exception&) {
        }
    }
    throw RuntimeError(std::string("etcd sent a non-integer \"") + field + "\": " + it->dump());
}

static std::string json_bytes(const json& object, const char* field) {
    auto it = object.find(field);
    if (it == object.end() || it->is_null()) return {};
    return base64_decode(it->get<std::string>());
}

KeyValue parse_kv(const json& kv) {
    KeyValue out;
    out.key = json_bytes(kv, "key");
    out.value = json_bytes(kv, "value");
    out.create_revision = json_int(kv, "create_revision");
    out.mod_revision = json_int(kv, "mod_revision");
    out.version = json_int(kv, "version");
    out.lease = json_int(kv, "lease");
    return out;
}

std::optional<GatewayError> parse_gateway_error(const json& body) {
    if (!body.is_object()) return std::nullopt;
    auto it = body.find("error");
    if (it == body.end()) return std::nullopt;
    GatewayError e;
    if (it->is_object()) {  // streamed: {"error":{"grpc_code":14,"http_code":503,"message":…}}
        e.grpc_code = static_cast<int>(json_int(*it, "grpc_code"));
        e.message = it->value("message", "");
    } else {  // unary: {"error":"…","code":11,"message":"…"}
        e.grpc_code = static_cast<int>(json_int(body, "code"));
        e.message = body.value("message", it->is_string() ? it->get<std::string>() : it->dump());
    }
    return e;
}

WatchLine parse_watch_line(const std::string& line) {
    json doc = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
        throw RuntimeError("etcd's watch stream sent a line that is not JSON: " + line.substr(0, 200));
    }
    WatchLine out;
    if (auto err = parse_gateway_error(doc)) {
        out.kind = WatchLine::Kind::Error;
        out.grpc_code = err->grpc_code;
        out.message = err->message;
        return out;
    }
    auto result = doc.find("result");
    if (result == doc.end() || !result->is_object()) {
        throw RuntimeError("etcd's watch stream sent a line with neither result nor error: " + line.substr(0, 200));
    }
    if (auto header = result->find("header"); header != result->end()) {
        out.response.revision = json_int(*header, "revision");
    }
    if (result->value("canceled", false)) {
        out.kind = WatchLine::Kind::Canceled;
        out.compact_revision = json_int(*result, "compact_revision");
        out.message = result->value("cancel_reason", "");
        return out;
    }
    if (result->value("created", false)) {
        out.kind = WatchLine::Kind::Created;
        return out;
    }
    if (auto events = result->find("events"); events != result->end()) {
        for (const json& e : *events) {
            WatchEvent event;
            event.type = e.value("type", "PUT") == "DELETE" ? WatchEvent::Type::Delete : WatchEvent::Type::Put;
            if (auto kv = e.find("kv"); kv != e.end()) event.kv = parse_kv(*kv);
            if (auto prev = e.find("prev_kv"); prev != e.end()) event.prev_kv = parse_kv(*prev);
            out.response.events.push_back(std::move(event));
        }
    }
    return out;
}

std::string prefix_range_end(const std::string& prefix) {
    std::string end = prefix;
    while (!end.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(end.back());
        if (last < 0xff) {
            ++last;
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');
}

}  // namespace smtpfence::etcd
