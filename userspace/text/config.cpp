#include "text/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "base/errors.h"
#include "text/line_files.h"

namespace smtpfence {

namespace {

std::string_view trim(std::string_view s) {
    size_t begin = s.find_first_not_of(" \t\r");
    if (begin == std::string_view::npos) return {};
    size_t end = s.find_last_not_of(" \t\r");
    return s.substr(begin, end - begin + 1);
}

std::vector<std::string> split_names(std::string_view value) {
    std::vector<std::string> names;
    std::string current;
    for (char c : value) {
        if (c == ' ' || c == '\t' || c == ',') {
            if (!current.empty()) names.push_back(std::move(current));
            current.clear();
        } else {
            current += c;
        }
    }
    if (!current.empty()) names.push_back(std::move(current));
    return names;
}

std::string absolute_path(std::string_view key, std::string_view value) {
    if (value.empty() || value.front() != '/') {
        std::string example = key == "pin_dir"     ? kDefaultPinDir
                              : key == "state_dir" ? kDefaultStateDir
                                                   : "/etc/smtpfence/" + std::string(key.substr(5)) + ".pem";
        throw UsageError(std::string(key) + " must be an absolute path, e.g. " + std::string(key) + " = " + example);
    }
    return std::string(value);
}

}  // namespace

void check_fleet_name(std::string_view what, std::string_view name) {
    bool ok = !name.empty() && name.size() <= 63 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    });
    if (!ok) {
        throw UsageError(std::string(what) + " '" + std::string(name) +
                         "' is not a name: 1 to 63 letters, digits, '.', '-' or '_', e.g. mx1");
    }
}

BootConfig parse_fleet_config(std::string_view text, const std::string& source) {
    BootConfig cfg;
    for_each_line(text, source, [&](std::string_view line) {
        if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        line = trim(line);
        if (line.empty()) return;
        size_t eq = line.find('=');
        if (eq == std::string_view::npos) throw UsageError("expected `key = value`, e.g. interfaces = eth0");
        std::string_view key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
        if (key == "interfaces") {
            cfg.interfaces = split_names(value);
        } else if (key == "mode") {
            if (value != "auto" && value != "native" && value != "generic") {
                throw UsageError("mode '" + std::string(value) + "' is not one of auto, native, generic");
            }
            cfg.mode = value;
        } else if (key == "ports") {
            cfg.ports = parse_port_list(value);
        } else if (key == "pin_dir") {
            cfg.pin_dir = absolute_path(key, value);
        } else if (key == "state_dir") {
            cfg.state_dir = absolute_path(key, value);
        } else if (key == "max_rules") {
            uint32_t n = 0;
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc{} || ptr != value.data() + value.size() || n < 16 || n > (1u << 24)) {
                throw UsageError("max_rules must be a whole number from 16 to 16777216");
            }
            cfg.max_rules = n;
        } else if (key == "host") {
            check_fleet_name("host", value);
            cfg.fleet.host = value;
        } else if (key == "roles") {
            cfg.fleet.roles = split_names(value);
            for (const auto& role : cfg.fleet.roles) check_fleet_name("role", role);
        } else if (key == "etcd_endpoints") {
            cfg.fleet.etcd_endpoints = split_names(value);
            for (const auto& e : cfg.fleet.etcd_endpoints) {
                if (e.rfind("https://", 0) != 0 && e.rfind("http://", 0) != 0) {
                    throw UsageError("etcd endpoint '" + e + "' is not a URL, e.g. https://203.0.113.101:2379");
                }
            }
        } else if (key == "etcd_ca") {
            cfg.fleet.etcd_ca = absolute_path(key, value);
        } else if (key == "etcd_cert") {
            cfg.fleet.etcd_cert = absolute_path(key, value);
        } else if (key == "etcd_key") {
            cfg.fleet.etcd_key = absolute_path(key, value);
        } else if (key == "etcd_user") {
            cfg.fleet.etcd_user = value;
        } else if (key == "etcd_password_file") {
            cfg.fleet.etcd_password_file = absolute_path(key, value);
        } else {
            throw UsageError("unknown setting '" + std::string(key) +
                             "'; the settings are interfaces, mode, ports, pin_dir, state_dir, max_rules, host, "
                             "roles, etcd_endpoints, etcd_ca, etcd_cert, etcd_key, etcd_user, etcd_password_file");
        }
    });
    return cfg;
}

BootConfig parse_boot_config(std::string_view text, const std::string& source) {
    BootConfig cfg = parse_fleet_config(text, source);
    if (cfg.interfaces.empty()) {
        throw UsageError(source + ": no interfaces: name the ones to guard, e.g. `interfaces = eth0`");
    }
    return cfg;
}

}  // namespace smtpfence
