#include "fence/provenance.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "smtpfence_abi.h"

namespace smtpfence {

std::string invoking_user() {
    if (const char* sudo_user = std::getenv("SUDO_USER"); sudo_user && *sudo_user && getuid() == 0) {
        return sudo_user;
    }
    if (const passwd* pw = getpwuid(getuid())) return pw->pw_name;
    return "uid " + std::to_string(getuid());
}

std::string invoking_origin() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "unknown host");
    std::string origin = host;
    // SSH_CONNECTION is "client-ip client-port server-ip server-port";
    // SSH_CLIENT, its older form, starts the same way.
    for (const char* var : {"SSH_CONNECTION", "SSH_CLIENT"}) {
        const char* value = std::getenv(var);
        if (!value || !*value) continue;
        std::string client(value);
        client = client.substr(0, client.find(' '));
        if (!client.empty()) origin += " (ssh from " + client + ")";
        break;
    }
    if (origin.size() >= FENCE_ORIGIN_LEN) origin.resize(FENCE_ORIGIN_LEN - 1);
    return origin;
}

std::vector<HostAddress> host_addresses() {
    ifaddrs* raw = nullptr;
    if (::getifaddrs(&raw) != 0) return {};
    std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> list(raw, ::freeifaddrs);
    std::vector<HostAddress> out;
    for (const ifaddrs* ifa = list.get(); ifa; ifa = ifa->ifa_next) {
        if (!ifa->ifa_addr) continue;
        HostAddress host;
        host.interface = ifa->ifa_name ? ifa->ifa_name : "";
        if (ifa->ifa_addr->sa_family == AF_INET) {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(ifa->ifa_addr);
            host.address.family = Family::V4;
            host.address.prefixlen = 32;
            std::memcpy(host.address.addr.data(), &sin->sin_addr, 4);
        } else if (ifa->ifa_addr->sa_family == AF_INET6) {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ifa->ifa_addr);
            host.address.family = Family::V6;
            host.address.prefixlen = 128;
            std::memcpy(host.address.addr.data(), &sin6->sin6_addr, 16);
        } else {
            continue;
        }
        out.push_back(std::move(host));
    }
    return out;
}

}  // namespace smtpfence
