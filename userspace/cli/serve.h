// `smtpfence serve`: the fence over HTTP for Prometheus and dashboards.
//   GET /metrics  Prometheus text exposition (as `smtpfence metrics`)
//   GET /rules    the rules as JSON (as `smtpfence list --json`)
//   GET /top      the busiest sources as JSON (as `smtpfence top --json`),
//                 sampled over ?interval=SECS (default 1) while the request
//                 waits; ?n=N and ?port=P as on the command line
// Every request reads the pinned maps afresh: no state is kept between
// scrapes, so any number of scrapers see the same numbers.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct ServeOptions {
    std::string listen;  // ADDR:PORT, checked by parse_listen_address
};
void register_serve(CLI::App& app, std::vector<Command>& commands);
int run_serve(const ServeOptions& options, const CliContext& ctx);

struct ListenAddress {
    std::string host;  // an IPv4 or IPv6 address
    int port = 0;
};

// "127.0.0.1:9464", "[::1]:9464", ":9464" (every IPv4 address). Throws
// UsageError.
ListenAddress parse_listen_address(std::string_view text);

// Serves until SIGINT or SIGTERM; `out` gets one line once the socket listens.
// `warn_block_age_s` marks old blocks in /rules, as in `list --json`.
void serve(const std::string& pin_dir, const std::string& state_dir, const ListenAddress& address, std::ostream& out,
           std::ostream& err, uint64_t warn_block_age_s);

}  // namespace smtpfence
