// How to reach an etcd cluster, and the checks that refuse an unsafe or
// broken setup before any connection is tried.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace smtpfence::etcd {

struct ClientConfig {
    std::vector<std::string> endpoints;  // "https://203.0.113.101:22379", tried in order, rotating on failure
    std::string ca_file;                 // the CA that signed the servers' certificates (https)
    std::string cert_file, key_file;     // this client's certificate (etcd --client-cert-auth)
    std::string user, password_file;     // optional etcd auth; the file holds the password
    bool insecure = false;               // allow http:// endpoints (a test cluster)
    std::chrono::milliseconds request_timeout{2000};  // a whole unary request, every endpoint tried included
    int page_size = 1000;                             // keys per Range page in range_prefix
};

// Throws UsageError naming the setting and the fix: no endpoints; an
// endpoint that is not http:// or https://; http:// without insecure; https://
// without ca_file; cert_file without key_file (or the reverse); user without
// password_file (or the reverse); a file that is missing or unreadable; a
// key_file or password_file that group or others may read ("chmod 600 FILE");
// a non-positive timeout or page size.
void validate_config(const ClientConfig& config);

// The password: the file's content without its trailing newline(s). Throws
// UsageError when the file is empty.
std::string read_password(const std::string& password_file);

}  // namespace smtpfence::etcd
