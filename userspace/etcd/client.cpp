#include "etcd/client.h"

#include <curl/curl.h>

#include <chrono>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>

#include "etcd/base64.h"

namespace smtpfence::etcd {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct CurlEasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlMultiDeleter {
    void operator()(CURLM* h) const { curl_multi_cleanup(h); }
};
using CurlMulti = std::unique_ptr<CURLM, CurlMultiDeleter>;

struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlSlist = std::unique_ptr<curl_slist, SlistDeleter>;

void global_init() {
    // curl_global_init is not thread-safe and must run once per process.
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw RuntimeError("libcurl failed to initialise");
    });
}

CurlEasy new_easy() {
    CurlEasy h(curl_easy_init());
    if (!h) throw RuntimeError("libcurl could not create a handle (out of memory?)");
    return h;
}

// Failures where another member may well answer: nothing reached etcd, or
// this member is cut off (503 is the gateway's "unavailable").
bool is_transport_failure(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE: return true;
    default: return false;
    }
}

bool is_auth_expired(int code, const std::string& message) {
    return code == kCodeUnauthenticated || message.find("invalid auth token") != std::string::npos;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// The fix for a plain-text answer, which comes from etcd's HTTP layer rather
// than from the gateway.
std::string not_json_hint(const std::string& body) {
    if (body.find("CommonName") != std::string::npos) {
        // embed/serve.go: with --client-cert-auth and auth enabled, a /v3
        // request over a certificate with a CN is refused, because the gateway
        // cannot pass the CN on as the user.
        return "; with etcd auth enabled the gateway refuses client certificates that carry a CommonName: issue "
               "this client's certificate without a CN (e.g. openssl -subj /O=smtpfence) and log in with user "
               "and password_file";
    }
    return " (is this an etcd client URL?)";
}

// The fix for the auth refusals an admin meets first.
std::string auth_hint(const std::string& message) {
    if (message.find("user name is empty") != std::string::npos) {
        return "; etcd has auth enabled: set user and password_file";
    }
    if (message.find("authentication failed") != std::string::npos) {
        return "; check user and the password in password_file";
    }
    if (message.find("permission denied") != std::string::npos) {
        return "; the etcd user's role does not allow this key";
    }
    return "";
}

size_t append_body(char* data, size_t size, size_t n, void* user) {
    static_cast<std::string*>(user)->append(data, size * n);
    return size * n;
}

}  // namespace

struct Client::Impl {
    ClientConfig config;
    std::string password;
    std::string token;
    size_t current = 0;  // index of the endpoint in use
    CurlEasy unary;      // reused for every unary request: keeps the TLS connection
    char errbuf[CURL_ERROR_SIZE] = {};

    // The curl failure, with a hint where the cause is likely ours to fix.
    std::string describe_curl(CURLcode rc, const char* errbuf) const {
        std::string text = curl_easy_strerror(rc);
        if (errbuf && *errbuf) text += std::string(" (") + errbuf + ")";
        bool handshake = rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
                         rc == CURLE_GOT_NOTHING;
        if (handshake && config.cert_file.empty()) {
            // etcd with --client-cert-auth drops a client without a
            // certificate during or right after the handshake.
            text +=
                "; this client sends no certificate: if etcd runs with --client-cert-auth, set cert_file and key_file";
        } else if (rc == CURLE_PEER_FAILED_VERIFICATION) {
            text += "; check that ca_file signed the server's certificate and that the endpoint's host is in its SAN";
        } else if (rc == CURLE_GOT_NOTHING && config.insecure) {
            text += "; is this an https endpoint written as http://?";
        }
        return text;
    }

    void set_tls(CURL* h) {
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        // HTTP/1.1: the gateway's watch is a chunked stream; h2 would reach
        // etcd's cmux, which routes by content type, for no gain here.
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
        if (!config.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, config.ca_file.c_str());
        if (!config.cert_file.empty()) {
            curl_easy_setopt(h, CURLOPT_SSLCERT, config.cert_file.c_str());
            curl_easy_setopt(h, CURLOPT_SSLKEY, config.key_file.c_str());
        }
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
    }

    CurlSlist headers(bool watch) const {
        curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
        // Without it a member that lost its quorum keeps a watch open and
        // sends progress notifications, as if all were well.
        if (watch) list = curl_slist_append(list, "Grpc-Metadata-hasleader: true");
        // The gateway takes the token as is, without "Bearer".
        if (!token.empty()) list = curl_slist_append(list, ("Authorization: " + token).c_str());
        if (!list) throw RuntimeError("libcurl could not build the request headers (out of memory?)");
        return CurlSlist(list);
    }

    void advance(ClientStats& stats) {
        if (config.endpoints.size() > 1) {
            current = (current + 1) % config.endpoints.size();
            ++stats.endpoint_switches;
        }
    }

    // One unary POST, tried on each endpoint at most once within the request
    // timeout. Put and delete are retried too, although a timed-out attempt
    // may have been applied: a put of the same value or a delete of an absent
    // key lands in the same state. A txn is not idempotent in its answer (a
    // retried put_if_unchanged whose first attempt landed reports a conflict);
    // its caller re-reads on conflict anyway.
    json post_once(const std::string& path, const json& body, const char* what, ClientStats& stats) {
        auto deadline = Clock::now() + config.request_timeout;
        std::string payload = body.dump();
        std::string last_failure;
        size_t n = config.endpoints.size(), tried = 0;
        for (size_t attempt = 0; attempt < n; ++attempt) {
            const std::string& endpoint = config.endpoints[current];
            auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (remaining.count() <= 0) break;
            ++tried;
            // Leave the endpoints after this one a share of the time, so one
            // that drops packets cannot eat the whole budget in connect.
            long connect_ms = std::max<long>(100, remaining.count() / static_cast<long>(n - attempt));
            CURL* h = unary.get();
            curl_easy_reset(h);
            set_tls(h);
            std::string url = endpoint + path;
            std::string response;
            CurlSlist hdrs = headers(false);
            errbuf[0] = 0;
            curl_easy_setopt(h, CURLOPT_URL, url.c_str());
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs.get());
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.c_str());
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
            curl_easy_setopt(h, CURLOPT_WRITEDATA, &response);
            curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
            curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
            CURLcode rc = curl_easy_perform(h);
            if (rc != CURLE_OK) {
                last_failure = endpoint + ": " + describe_curl(rc, errbuf);
                if (!is_transport_failure(rc)) break;
                advance(stats);
                continue;
            }
            long status = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            json doc = json::parse(response, nullptr, false);
            if (status == 503) {
                auto err = parse_gateway_error(doc);
                last_failure = endpoint + ": HTTP 503" + (err ? ": " + err->message : "");
                advance(stats);
                continue;
            }
            if (doc.is_discarded()) {
                throw StoreError(
                    std::string(what) + " failed: " + endpoint + " answered HTTP " + std::to_string(status) +
                        " with a body that is not JSON: " + trim(response.substr(0, 200)) + not_json_hint(response),
                    0, endpoint);
            }
            if (auto err = parse_gateway_error(doc); err && (status != 200 || doc.size() == 1 || err->grpc_code)) {
                throw StoreError(std::string(what) + " failed on " + endpoint + ": " + err->message + " (gRPC code " +
                                     std::to_string(err->grpc_code) + ")" + auth_hint(err->message),
                                 err->grpc_code, endpoint);
            }
            if (status != 200) {
                throw StoreError(std::string(what) + " failed on " + endpoint + ": HTTP " + std::to_string(status) +
                                     ": " + response.substr(0, 200),
                                 0, endpoint);
            }
            // Streaming methods (lease keepalive) wrap their answer in "result".
            if (auto result = doc.find("result"); result != doc.end() && doc.size() == 1) return *result;
            return doc;
        }
        if (last_failure.empty()) last_failure = "no time left";
        throw StoreError(std::string(what) + " failed: " + std::to_string(tried) + " of " + std::to_string(n) +
                             " etcd endpoints tried within the " + std::to_string(config.request_timeout.count()) +
                             " ms request timeout, all failed; last: " + last_failure,
                         0, config.endpoints[current]);
    }

    void authenticate(ClientStats& stats) {
        token.clear();
        std::string what = "authenticating as etcd user " + config.user;
        json answer = post_once("/v3/auth/authenticate", {{"name", config.user}, {"password", password}}, what.c_str(),
                                stats);
        token = answer.value("token", "");
        if (token.empty()) {
            throw StoreError("etcd accepted user " + config.user +
                                 " but sent no token: is auth enabled on the cluster?",
                             0, config.endpoints[current]);
        }
        ++stats.authentications;
    }

    // A request with auth handled: log in first when needed, and once more
    // when the token expired (simple tokens expire after --auth-token-ttl idle).
    json post(const std::string& path, const json& body, const char* what, ClientStats& stats) {
        if (!config.user.empty() && token.empty()) authenticate(stats);
        try {
            return post_once(path, body, what, stats);
        } catch (const StoreError& e) {
            if (config.user.empty() || !is_auth_expired(e.grpc_code, e.what())) throw;
        }
        authenticate(stats);
        return post_once(path, body, what, stats);
    }
};

Client::Client(ClientConfig config) : impl_(std::make_unique<Impl>()) {
    validate_config(config);
    global_init();
    impl_->config = std::move(config);
    if (!impl_->config.password_file.empty()) impl_->password = read_password(impl_->config.password_file);
    impl_->unary = new_easy();
}

Client::~Client() = default;

const std::string& Client::endpoint() const {
    return impl_->config.endpoints[impl_->current];
}

RangeResult Client::range_prefix(const std::string& prefix, int64_t revision) {
    RangeResult out;
    std::string key = prefix;
    std::string end = prefix_range_end(prefix);
    out.revision = revision;
    for (;;) {
        json request = {{"key", base64_encode(key)},
                        {"range_end", base64_encode(end)},
                        {"limit", std::to_string(impl_->config.page_size)}};
        if (out.revision != 0) request["revision"] = std::to_string(out.revision);
        json answer = impl_->post("/v3/kv/range", request, ("listing " + prefix).c_str(), stats_);
        // The header carries the store's current revision; the first page
        // pins every following one to it, so the list is one snapshot.
        if (out.revision == 0) out.revision = json_int(answer.value("header", json::object()), "revision");
        if (auto kvs = answer.find("kvs"); kvs != answer.end()) {
            for (const json& kv : *kvs) out.kvs.push_back(parse_kv(kv));
        }
        if (!answer.value("more", false) || out.kvs.empty()) break;
        // Keys come sorted; the next page starts right after the last one.
        key = out.kvs.back().key + '\0';
    }
    return out;
}

std::optional<KeyValue> Client::get(const std::string& key) {
    json answer = impl_->post("/v3/kv/range", {{"key", base64_encode(key)}}, ("reading " + key).c_str(), stats_);
    auto kvs = answer.find("kvs");
    if (kvs == answer.end() || kvs->empty()) return std::nullopt;
    return parse_kv(kvs->front());
}

static int64_t header_revision(const json& answer) {
    return json_int(answer.value("header", json::object()), "revision");
}

int64_t Client::put(const std::string& key, const std::string& value, int64_t lease) {
    json request = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
    if (lease != 0) request["lease"] = std::to_string(lease);
    return header_revision(impl_->post("/v3/kv/put", request, ("writing " + key).c_str(), stats_));
}

int64_t Client::erase(const std::string& key) {
    return header_revision(
        impl_->post("/v3/kv/deleterange", {{"key", base64_encode(key)}}, ("deleting " + key).c_str(), stats_));
}

std::optional<int64_t> Client::put_if_unchanged(const std::string& key, const std::string& value,
                                                int64_t mod_revision) {
    // An absent key compares as mod_revision 0, so 0 means "create only".
    json request = {
        {"compare", json::array({{{"key", base64_encode(key)},
                                  {"target", "MOD"},
                                  {"result", "EQUAL"},
                                  {"mod_revision", std::to_string(mod_revision)}}})},
        {"success", json::array({{{"request_put", {{"key", base64_encode(key)}, {"value", base64_encode(value)}}}}})},
    };
    json answer = impl_->post("/v3/kv/txn", request, ("writing " + key + " if unchanged").c_str(), stats_);
    // "succeeded" is omitted when false (a proto default).
    if (!answer.value("succeeded", false)) return std::nullopt;
    return header_revision(answer);
}

int64_t Client::lease_grant(int64_t ttl_s) {
    json answer = impl_->post("/v3/lease/grant", {{"TTL", std::to_string(ttl_s)}}, "granting a lease", stats_);
    // The gateway keeps the proto's field names here: "TTL", "ID".
    if (std::string err = answer.value("error", ""); !err.empty()) {
        throw StoreError("granting a lease failed on " + endpoint() + ": " + err, 0, endpoint());
    }
    int64_t id = json_int(answer, "ID");
    if (id == 0) throw StoreError("etcd granted a lease without an ID: " + answer.dump(), 0, endpoint());
    return id;
}

int64_t Client::lease_keepalive(int64_t id) {
    json answer = impl_->post("/v3/lease/keepalive", {{"ID", std::to_string(id)}}, "renewing a lease", stats_);
    int64_t ttl = json_int(answer, "TTL");
    // An expired or revoked lease answers with no TTL rather than an error.
    if (ttl <= 0) {
        throw StoreError("lease " + std::to_string(id) + " has expired or was revoked: grant a new one", 5, endpoint());
    }
    return ttl;
}

void Client::lease_revoke(int64_t id) {
    impl_->post("/v3/lease/revoke", {{"ID", std::to_string(id)}}, "revoking a lease", stats_);
}

void Client::compact(int64_t revision) {
    // physical: answer once the old revisions are gone, so what follows sees them gone.
    impl_->post("/v3/kv/compaction", {{"revision", std::to_string(revision)}, {"physical", true}},
                ("compacting to revision " + std::to_string(revision)).c_str(), stats_);
}

namespace {

// The state of one watch transfer, shared with libcurl's write callback.
struct WatchState {
    CURL* handle = nullptr;
    const std::function<bool(const WatchResponse&)>* on_response = nullptr;
    std::string buffer;  // bytes after the last complete line
    std::string body;    // a non-200 answer, kept whole
    bool done = false;   // the outcome is decided; stop reading
    bool created = false;
    bool delivered = false;  // at least one response went to the caller
    WatchOutcome outcome;
    int error_code = 0;         // the gRPC code of an error line
    std::exception_ptr thrown;  // from on_response, rethrown by watch()
};

size_t on_watch_bytes(char* data, size_t size, size_t n, void* user) {
    auto* st = static_cast<WatchState*>(user);
    size_t len = size * n;
    if (st->done) return 0;
    long status = 0;
    curl_easy_getinfo(st->handle, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        st->body.append(data, len);
        return len;
    }
    st->buffer.append(data, len);
    size_t start = 0;
    for (size_t nl; !st->done && (nl = st->buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string line = st->buffer.substr(start, nl - start);
        if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
        WatchLine parsed;
        try {
            parsed = parse_watch_line(line);
        } catch (const std::exception& e) {
            st->outcome = {WatchEnd::Broken, 0, e.what()};
            st->done = true;
            break;
        }
        switch (parsed.kind) {
        case WatchLine::Kind::Created:
            // Not passed on: its header revision is the store's current one,
            // ahead of the history still to be replayed; a caller that saved
            // it would skip that history.
            st->created = true;
            break;
        case WatchLine::Kind::Response:
            st->delivered = true;
            // An exception must not unwind through libcurl's C frames: keep
            // it, end the transfer, and rethrow once curl is out of the way.
            try {
                if (!(*st->on_response)(parsed.response)) {
                    st->outcome = {WatchEnd::Stopped, 0, {}};
                    st->done = true;
                }
            } catch (...) {
                st->thrown = std::current_exception();
                st->done = true;
            }
            break;
        case WatchLine::Kind::Canceled:
            st->done = true;
            if (parsed.compact_revision > 0) {
                st->outcome = {WatchEnd::Compacted, parsed.compact_revision, {}};
            } else {
                st->outcome = {WatchEnd::Broken, 0, "etcd cancelled the watch: " + parsed.message};
            }
            break;
        case WatchLine::Kind::Error:
            st->done = true;
            st->error_code = parsed.grpc_code;
            st->outcome = {WatchEnd::Broken, 0,
                           "etcd ended the watch: " + parsed.message + " (gRPC code " +
                               std::to_string(parsed.grpc_code) + ")"};
            break;
        }
    }
    st->buffer.erase(0, start);
    // Returning less than len aborts the transfer: the outcome is decided,
    // and a compaction cancel leaves the stream open for us to close.
    return st->done ? 0 : len;
}

}  // namespace

WatchOutcome Client::watch(const std::string& prefix, int64_t start_revision,
                           const std::function<bool(const WatchResponse&)>& on_response,
                           const std::atomic<bool>& stop) {
    Impl& im = *impl_;
    json create = {{"key", base64_encode(prefix)},
                   {"range_end", base64_encode(prefix_range_end(prefix))},
                   {"progress_notify", true},
                   {"prev_kv", true}};
    if (start_revision != 0) create["start_revision"] = std::to_string(start_revision);
    std::string payload = json{{"create_request", create}}.dump();

    bool reauthenticated = false;
    std::string last_failure;
    size_t n = im.config.endpoints.size();
    // Each endpoint gets one try to establish the stream; once it delivered
    // anything, any failure is the caller's to handle (resume or re-list).
    for (size_t attempt = 0; attempt < n; ++attempt) {
        if (!im.config.user.empty() && im.token.empty()) {
            try {
                im.authenticate(stats_);
            } catch (const StoreError& e) {
                return {WatchEnd::Broken, 0, e.what()};
            }
        }
        const std::string endpoint = im.config.endpoints[im.current];
        CurlEasy easy = new_easy();
        CURL* h = easy.get();
        im.set_tls(h);
        std::string url = endpoint + "/v3/watch";
        CurlSlist hdrs = im.headers(true);
        char errbuf[CURL_ERROR_SIZE] = {};
        WatchState st;
        st.handle = h;
        st.on_response = &on_response;
        curl_easy_setopt(h, CURLOPT_URL, url.c_str());
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs.get());
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.c_str());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_watch_bytes);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &st);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(im.config.request_timeout.count()));

        // The multi interface, so the loop wakes every 100 ms to look at
        // `stop`: an idle easy transfer calls its progress callback only
        // about once a second.
        CurlMulti multi(curl_multi_init());
        if (!multi) throw RuntimeError("libcurl could not create a multi handle (out of memory?)");
        curl_multi_add_handle(multi.get(), h);
        CURLcode rc = CURLE_OK;
        bool finished = false;
        while (!finished) {
            if (stop.load()) {
                curl_multi_remove_handle(multi.get(), h);
                return {WatchEnd::Stopped, 0, {}};
            }
            int running = 0;
            CURLMcode mc = curl_multi_perform(multi.get(), &running);
            if (mc != CURLM_OK) {
                curl_multi_remove_handle(multi.get(), h);
                return {WatchEnd::Broken, 0, std::string("libcurl: ") + curl_multi_strerror(mc)};
            }
            int queued = 0;
            while (CURLMsg* msg = curl_multi_info_read(multi.get(), &queued)) {
                if (msg->msg == CURLMSG_DONE) {
                    rc = msg->data.result;
                    finished = true;
                }
            }
            if (finished || st.done) break;
            curl_multi_poll(multi.get(), nullptr, 0, 100, nullptr);
        }
        curl_multi_remove_handle(multi.get(), h);
        if (st.thrown) std::rethrow_exception(st.thrown);

        if (st.done) {
            // A first answer refusing the token: log in again, once.
            if (!st.delivered && !im.config.user.empty() && !reauthenticated &&
                is_auth_expired(st.error_code, st.outcome.reason)) {
                reauthenticated = true;
                im.token.clear();
                --attempt;
                continue;
            }
            if (st.outcome.end == WatchEnd::Broken) {
                st.outcome.reason += " on " + endpoint;
                im.advance(stats_);
            }
            return st.outcome;
        }
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        bool established = st.created || st.delivered;
        if (rc != CURLE_OK) {
            last_failure = endpoint + ": " + im.describe_curl(rc, errbuf);
        } else if (status != 200) {
            json doc = json::parse(st.body, nullptr, false);
            auto err = parse_gateway_error(doc);
            last_failure = endpoint + ": HTTP " + std::to_string(status) + ": " +
                           (err ? err->message : trim(st.body.substr(0, 200)) + not_json_hint(st.body));
            if (err && !reauthenticated && !im.config.user.empty() && is_auth_expired(err->grpc_code, err->message)) {
                reauthenticated = true;
                im.token.clear();
                --attempt;
                continue;
            }
            if (status != 503) {
                im.advance(stats_);
                return {WatchEnd::Broken, 0, "the watch was refused: " + last_failure};
            }
        } else {
            last_failure = endpoint + ": the watch stream ended";
        }
        im.advance(stats_);
        if (established || (rc != CURLE_OK && !is_transport_failure(rc))) {
            return {WatchEnd::Broken, 0, last_failure};
        }
    }
    return {WatchEnd::Broken, 0, "no etcd endpoint accepted the watch; last: " + last_failure};
}

}  // namespace smtpfence::etcd
