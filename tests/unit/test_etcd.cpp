// The pure parts of the etcd client: base64, the gateway's JSON (lines
// captured from etcd 3.4.23's /v3/watch and /v3/kv/range), prefix ranges and
// the config checks.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "etcd/base64.h"
#include "etcd/client.h"
#include "etcd/config.h"
#include "etcd/wire.h"

namespace smtpfence::etcd {
namespace {

TEST(EtcdBase64, Rfc4648Vectors) {
    const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                           {"f", "Zg=="},
                                                           {"fo", "Zm8="},
                                                           {"foo", "Zm9v"},
                                                           {"foob", "Zm9vYg=="},
                                                           {"fooba", "Zm9vYmE="},
                                                           {"foobar", "Zm9vYmFy"}};
    for (auto [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(plain), encoded);
        EXPECT_EQ(base64_decode(encoded), plain);
    }
}

TEST(EtcdBase64, RoundTripsEveryByte) {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (size_t len = 0; len <= all.size(); len += 37) {
        std::string part = all.substr(all.size() - len);
        EXPECT_EQ(base64_decode(base64_encode(part)), part);
    }
    EXPECT_EQ(base64_encode(std::string("\xff\xfe", 2)), "//4=");
}

TEST(EtcdBase64, RefusesWhatIsNotBase64) {
    EXPECT_THROW(base64_decode("Zm9"), RuntimeError);
    EXPECT_THROW(base64_decode("Zm9*"), RuntimeError);
    EXPECT_THROW(base64_decode("Z=9v"), RuntimeError);
    EXPECT_THROW(base64_decode("Zg==Zm9v"), RuntimeError);
    EXPECT_THROW(base64_decode("Z==="), RuntimeError);
}

TEST(EtcdWire, PrefixRangeEnd) {
    EXPECT_EQ(prefix_range_end("/a/"), "/a0");
    EXPECT_EQ(prefix_range_end(std::string("a\xff", 2)), "b");
    EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
    EXPECT_EQ(prefix_range_end(std::string("\xff\xff", 2)), std::string(1, '\0'));
}

// Captured from etcd 3.4.23 (cluster and member ids shortened).
const char kCreated[] =
    R"({"result":{"header":{"cluster_id":"1","member_id":"2","revision":"4","raft_term":"2"},"created":true}})";
const char kEvents[] =
    R"({"result":{"header":{"cluster_id":"1","member_id":"2","revision":"4","raft_term":"2"},"events":[)"
    R"({"kv":{"key":"L3gvYQ==","create_revision":"2","mod_revision":"2","version":"1","value":"MQ=="}},)"
    R"({"kv":{"key":"L3gvYQ==","create_revision":"2","mod_revision":"3","version":"2","value":"Mg=="},)"
    R"("prev_kv":{"key":"L3gvYQ==","create_revision":"2","mod_revision":"2","version":"1","value":"MQ=="}},)"
    R"({"type":"DELETE","kv":{"key":"L3gvYQ==","mod_revision":"4"},)"
    R"("prev_kv":{"key":"L3gvYQ==","create_revision":"2","mod_revision":"3","version":"2","value":"Mg=="}}]}})";
const char kProgress[] = R"({"result":{"header":{"cluster_id":"1","member_id":"2","revision":"4","raft_term":"2"}}})";
const char kCompacted[] =
    R"({"result":{"header":{"cluster_id":"1","member_id":"2","raft_term":"2"},"canceled":true,"compact_revision":"3"}})";
const char kStreamError[] =
    R"({"error":{"grpc_code":14,"http_code":503,"message":"transport is closing","http_status":"Service Unavailable"}})";

TEST(EtcdWire, WatchEventsInOrderWithPrevKv) {
    WatchLine line = parse_watch_line(kEvents);
    ASSERT_EQ(line.kind, WatchLine::Kind::Response);
    EXPECT_EQ(line.response.revision, 4);
    const auto& ev = line.response.events;
    ASSERT_EQ(ev.size(), 3u);
    EXPECT_EQ(ev[0].type, WatchEvent::Type::Put);
    EXPECT_EQ(ev[0].kv, (KeyValue{"/x/a", "1", 2, 2, 1, 0}));
    EXPECT_FALSE(ev[0].prev_kv);
    EXPECT_EQ(ev[1].kv.value, "2");
    ASSERT_TRUE(ev[1].prev_kv);
    EXPECT_EQ(ev[1].prev_kv->value, "1");
    EXPECT_EQ(ev[2].type, WatchEvent::Type::Delete);
    EXPECT_EQ(ev[2].kv, (KeyValue{"/x/a", "", 0, 4, 0, 0}));
    EXPECT_EQ(ev[2].prev_kv->mod_revision, 3);
}

TEST(EtcdWire, WatchLineKinds) {
    EXPECT_EQ(parse_watch_line(kCreated).kind, WatchLine::Kind::Created);
    WatchLine progress = parse_watch_line(kProgress);
    EXPECT_EQ(progress.kind, WatchLine::Kind::Response);
    EXPECT_TRUE(progress.response.events.empty());
    EXPECT_EQ(progress.response.revision, 4);
    WatchLine compacted = parse_watch_line(kCompacted);
    EXPECT_EQ(compacted.kind, WatchLine::Kind::Canceled);
    EXPECT_EQ(compacted.compact_revision, 3);
    WatchLine error = parse_watch_line(kStreamError);
    EXPECT_EQ(error.kind, WatchLine::Kind::Error);
    EXPECT_EQ(error.grpc_code, 14);
    EXPECT_EQ(error.message, "transport is closing");
    EXPECT_THROW(parse_watch_line("Grpc-Trailer: x"), RuntimeError);
    EXPECT_THROW(parse_watch_line(R"({"other":1})"), RuntimeError);
}

TEST(EtcdWire, UnaryErrorAndIntegers) {
    auto body = nlohmann::json::parse(
        R"({"error":"etcdserver: mvcc: required revision has been compacted",)"
        R"("message":"etcdserver: mvcc: required revision has been compacted","code":11})");
    auto err = parse_gateway_error(body);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->grpc_code, 11);
    EXPECT_EQ(err->message, "etcdserver: mvcc: required revision has been compacted");
    EXPECT_FALSE(parse_gateway_error(nlohmann::json::parse(R"({"header":{"revision":"7"}})")));
    auto doc = nlohmann::json::parse(R"({"a":"9007199254740993","b":5,"c":"x"})");
    EXPECT_EQ(json_int(doc, "a"), 9007199254740993);  // beyond a double's exact range
    EXPECT_EQ(json_int(doc, "b"), 5);
    EXPECT_EQ(json_int(doc, "missing"), 0);
    EXPECT_THROW(json_int(doc, "c"), RuntimeError);
}

class EtcdConfig : public testing::Test {
protected:
    void SetUp() override {
        dir = std::filesystem::temp_directory_path() / ("smtpfence-etcd-config-" + std::to_string(::getpid()) + "-" +
                                                        testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir);
        ca = write("ca.pem", 0644);
        cert = write("client.pem", 0644);
        key = write("client-key.pem", 0600);
        password = write("password", 0600, "secret\n");
    }
    void TearDown() override { std::filesystem::remove_all(dir); }
    std::string write(const std::string& name, mode_t mode, const std::string& text = "x") {
        std::string path = (dir / name).string();
        std::ofstream(path) << text;
        ::chmod(path.c_str(), mode);
        return path;
    }
    ClientConfig good() const {
        ClientConfig c;
        c.endpoints = {"https://203.0.113.101:2379"};
        c.ca_file = ca;
        c.cert_file = cert;
        c.key_file = key;
        c.user = "agent-mx1";
        c.password_file = password;
        return c;
    }
    // The UsageError's message, or "" when none was thrown.
    static std::string refusal(const ClientConfig& c) {
        try {
            validate_config(c);
        } catch (const UsageError& e) {
            return e.what();
        }
        return "";
    }
    std::filesystem::path dir;
    std::string ca, cert, key, password;
};

TEST_F(EtcdConfig, AcceptsAGoodConfig) {
    EXPECT_EQ(refusal(good()), "");
    EXPECT_EQ(read_password(password), "secret");
    EXPECT_NO_THROW(Client{good()});
}

TEST_F(EtcdConfig, RefusesPlainHttpUnlessInsecure) {
    ClientConfig c = good();
    c.endpoints = {"http://127.0.0.1:2379"};
    EXPECT_NE(refusal(c).find("insecure"), std::string::npos);
    EXPECT_THROW(Client{c}, UsageError);
    c.insecure = true;
    EXPECT_EQ(refusal(c), "");
    c.endpoints = {"127.0.0.1:2379"};
    EXPECT_NE(refusal(c).find("https://"), std::string::npos);
    c.endpoints.clear();
    EXPECT_NE(refusal(c).find("no etcd endpoints"), std::string::npos);
}

TEST_F(EtcdConfig, HttpsNeedsACa) {
    ClientConfig c = good();
    c.ca_file.clear();
    EXPECT_NE(refusal(c).find("CA file"), std::string::npos);
}

TEST_F(EtcdConfig, SecretsMustBePrivate) {
    ClientConfig c = good();
    ::chmod(key.c_str(), 0640);
    EXPECT_NE(refusal(c).find("chmod 600 " + key), std::string::npos) << refusal(c);
    ::chmod(key.c_str(), 0600);
    ::chmod(password.c_str(), 0604);
    std::string why = refusal(c);
    EXPECT_NE(why.find("chmod 600 " + password), std::string::npos) << why;
    EXPECT_NE(why.find("0604"), std::string::npos) << why;
}

TEST_F(EtcdConfig, NamesMissingFilesAndHalfPairs) {
    ClientConfig c = good();
    c.ca_file = (dir / "nope.pem").string();
    EXPECT_NE(refusal(c).find("ca_file " + c.ca_file + ": No such file"), std::string::npos) << refusal(c);
    c = good();
    c.key_file.clear();
    EXPECT_NE(refusal(c).find("key_file"), std::string::npos);
    c = good();
    c.password_file.clear();
    EXPECT_NE(refusal(c).find("password_file"), std::string::npos);
    c = good();
    c.user.clear();
    EXPECT_NE(refusal(c).find("user"), std::string::npos);
    c = good();
    c.password_file = write("empty", 0600, "\n");
    EXPECT_THROW(Client{c}, UsageError);
}

}  // namespace
}  // namespace smtpfence::etcd
