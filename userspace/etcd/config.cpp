#include "etcd/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/errors.h"

namespace smtpfence::etcd {

namespace {

bool starts_with(const std::string& s, const char* prefix) {
    return s.rfind(prefix, 0) == 0;
}

// The file must exist and be readable by us; a secret must also be private,
// because anyone who reads it can act as this host in the whole fleet.
void check_file(const char* setting, const std::string& path, bool secret) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        throw UsageError(describe_errno(std::string(setting) + " " + path, errno));
    }
    if (!S_ISREG(st.st_mode)) throw UsageError(std::string(setting) + " " + path + " is not a regular file");
    if (::access(path.c_str(), R_OK) != 0) {
        throw UsageError(describe_errno(std::string(setting) + " " + path + " cannot be read", errno));
    }
    if (secret && (st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw UsageError(std::string(setting) + " " + path + " is open to group or others (mode " + mode +
                         "): it is a secret; run chmod 600 " + path);
    }
}

}  // namespace

void validate_config(const ClientConfig& config) {
    if (config.endpoints.empty()) {
        throw UsageError("no etcd endpoints: give at least one, e.g. https://203.0.113.101:2379");
    }
    bool any_https = false;
    for (const std::string& endpoint : config.endpoints) {
        if (starts_with(endpoint, "https://")) {
            any_https = true;
        } else if (starts_with(endpoint, "http://")) {
            if (!config.insecure) {
                throw UsageError("etcd endpoint " + endpoint +
                                 " is plain HTTP: rules and credentials would cross the network in clear; use "
                                 "https:// with a CA file, or allow it explicitly with insecure (test clusters only)");
            }
        } else {
            throw UsageError("etcd endpoint " + endpoint + " has no scheme: write https://HOST:PORT");
        }
    }
    if (any_https && config.ca_file.empty()) {
        throw UsageError(
            "https etcd endpoints need a CA file (the CA that signed the etcd servers' certificates): "
            "the client always verifies the server");
    }
    if (config.cert_file.empty() != config.key_file.empty()) {
        throw UsageError("a client certificate needs both cert_file and key_file; only " +
                         std::string(config.cert_file.empty() ? "key_file" : "cert_file") + " is set");
    }
    if (config.user.empty() != config.password_file.empty()) {
        throw UsageError(config.user.empty() ? "password_file is set but no etcd user: set user too"
                                             : "etcd user " + config.user + " needs a password_file (mode 600)");
    }
    if (config.request_timeout.count() <= 0) throw UsageError("the etcd request timeout must be positive");
    if (config.page_size <= 0) throw UsageError("the etcd page size must be positive");
    if (!config.ca_file.empty()) check_file("ca_file", config.ca_file, false);
    if (!config.cert_file.empty()) check_file("cert_file", config.cert_file, false);
    if (!config.key_file.empty()) check_file("key_file", config.key_file, true);
    if (!config.password_file.empty()) check_file("password_file", config.password_file, true);
}

std::string read_password(const std::string& password_file) {
    std::ifstream in(password_file, std::ios::binary);
    if (!in) throw UsageError(describe_errno("password_file " + password_file, errno));
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::string password = buffer.str();
    // Editors and `echo` add a newline; a password never ends in one.
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
    if (password.empty()) throw UsageError("password_file " + password_file + " is empty: write the etcd password");
    return password;
}

}  // namespace smtpfence::etcd
