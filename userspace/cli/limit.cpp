#include "cli/limit.h"

#include <memory>

namespace smtpfence {

void register_limit(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<LimitOptions>();
    auto* cmd = app.add_subcommand("limit", "slow sources down: new connections at a rate, or a cap on open ones");
    add_cidr_argument(cmd, *options);
    LimitTexts& terms = options->terms;
    cmd->add_option("--rate", terms.rate, "new connections per key: N/s, N/min or N/h");
    cmd->add_option("--burst", terms.burst, "connections a key may open at once (default: one second's worth)");
    cmd->add_option("--max-conns", terms.max_conns, "open SMTP connections per key");
    cmd->add_option("--messages", terms.messages,
                    "messages per key, 6/min to 1000/s: what lets a message start (a new session's SYN-ACK, "
                    "the reply to a body) is held back to this pace, whatever the sender's session reuse or TLS");
    cmd->add_option("--per", terms.per,
                    "the key: source (default; /64 for IPv6), rule, or /LEN (re-run on a limit: kept unless given)");
    add_reason_and_expiry_options(cmd, *options);
    add_drop_options(cmd, *options);
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_limit(*options, ctx); }});
}

int run_limit(const LimitOptions& options, const CliContext& ctx) {
    return add_rules(options, Action::Limit, options.terms, ctx);
}

}  // namespace smtpfence
