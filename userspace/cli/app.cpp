#include "cli/app.h"

#include <CLI/CLI.hpp>
#include <bpf/libbpf.h>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "base/errors.h"
#include "cli/agent.h"
#include "cli/attach.h"
#include "cli/block.h"
#include "cli/boot.h"
#include "cli/commands.h"
#include "cli/enforce.h"
#include "cli/events.h"
#include "cli/fleet.h"
#include "cli/limit.h"
#include "cli/list.h"
#include "cli/lists.h"
#include "cli/metrics.h"
#include "cli/ports.h"
#include "cli/remove.h"
#include "cli/save_restore.h"
#include "cli/serve.h"
#include "cli/stats.h"
#include "cli/status.h"
#include "cli/top.h"
#include "text/defaults.h"
#include "text/durations.h"

namespace smtpfence {

namespace {

bool g_verbose = false;

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
    (void)level;
    // Our own errors say what failed; libbpf's detail (verifier log, pin
    // checks) is for -v.
    if (!g_verbose) return 0;
    return std::vfprintf(stderr, format, args);
}

std::string command_names(const std::vector<Command>& commands) {
    std::string names;
    for (const auto& c : commands) {
        if (!names.empty()) names += ", ";
        names += c.app->get_name();
        for (const auto& alias : c.app->get_aliases()) names += " (" + alias + ")";
    }
    return names;
}

// "smtpfence block", "smtpfence fleet limit": the (sub)command whose options
// were being parsed, for the hint that follows a parse error.
std::string command_path(const CLI::App& app) {
    std::string path = app.get_name();
    const CLI::App* current = &app;
    while (true) {
        const auto parsed = current->get_subcommands();
        if (parsed.empty()) return path;
        current = parsed.front();
        path += " " + current->get_name();
    }
}

}  // namespace

uint64_t parse_warn_block_age(const std::string& text) {
    if (text == "0" || text == "off") return 0;
    try {
        return parse_duration(text, "--warn-block-age");
    } catch (const UsageError& e) {
        throw UsageError(std::string(e.what()) + " (or 0 or off: never warn)");
    }
}

std::chrono::milliseconds parse_lock_timeout(const std::string& text) {
    if (text == "0") return std::chrono::milliseconds{0};
    try {
        return std::chrono::seconds{parse_duration(text, "--lock-timeout")};
    } catch (const UsageError& e) {
        throw UsageError(std::string(e.what()) + " (or 0: do not wait)");
    }
}

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    std::string pin_dir = kDefaultPinDir;
    std::string state_dir = kDefaultStateDir;
    CLI::App app{"smtpfence: emergency blocks for SMTP entry points, enforced by XDP", "smtpfence"};
    app.require_subcommand(1);
    app.fallthrough();
    app.add_option("--pin-dir", pin_dir, "where the program, maps and attachments are pinned")
        ->envname("SMTPFENCE_PIN_DIR")
        ->capture_default_str();
    app.add_option("--state-dir", state_dir,
                   "where the rule set is saved (NAME.rules, NAME from the pin dir); the audit log goes there too "
                   "unless it is the default (then /var/log/smtpfence/audit.log)")
        ->envname("SMTPFENCE_STATE_DIR")
        ->capture_default_str();
    std::string warn_block_age = kDefaultWarnBlockAge;
    app.add_option("--warn-block-age", warn_block_age,
                   "list and status warn about blocks older than this (senders bounce deferred mail after their "
                   "queue lifetime: Postfix 5d, Exim about 4d); 0 or off: never")
        ->envname("SMTPFENCE_WARN_BLOCK_AGE")
        ->capture_default_str();
    std::string lock_timeout = std::to_string(kDefaultLockTimeout.count() / 1000) + "s";
    app.add_option("--lock-timeout", lock_timeout,
                   "a change waits this long for another change holding the lock, then gives up (exit 1); "
                   "0: do not wait")
        ->envname("SMTPFENCE_LOCK_TIMEOUT")
        ->capture_default_str();
    app.add_flag("-v,--verbose", g_verbose, "print libbpf's detail");
    app.set_version_flag("--version", SMTPFENCE_VERSION);

    std::vector<Command> commands;
    // `--help` lists the subcommands in this order.
    register_attach(app, commands);
    register_detach(app, commands);
    register_block(app, commands);
    register_allow(app, commands);
    register_limit(app, commands);
    register_enforce(app, commands);
    register_remove(app, commands);
    register_ports(app, commands);
    register_list(app, commands);
    register_import(app, commands);
    register_unimport(app, commands);
    register_lists(app, commands);
    register_status(app, commands);
    register_save(app, commands);
    register_restore(app, commands);
    register_flush(app, commands);
    register_reap(app, commands);
    register_boot(app, commands);
    register_stats(app, commands);
    register_top(app, commands);
    register_events(app, commands);
    register_metrics(app, commands);
    register_serve(app, commands);
    register_agent(app, commands);
    register_fleet(app, commands);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (app.get_subcommands().empty() && !app.remaining().empty()) {
            err << "smtpfence: unknown command '" << app.remaining().front()
                << "'; commands: " << command_names(commands) << " (see --help)\n";
            return kExitUsage;
        }
        if (e.get_exit_code() == 0) {  // --help, --version
            std::ostringstream help_out, help_err;
            app.exit(e, help_out, help_err);
            out << help_out.str();
            err << help_err.str();
            return kExitOk;
        }
        err << "smtpfence: " << e.what() << "; see `" << command_path(app) << " --help`\n";
        return kExitUsage;
    }

    libbpf_set_print(libbpf_print);
    const char* syslog_setting = std::getenv("SMTPFENCE_SYSLOG");
    bool to_syslog = !(syslog_setting && std::string(syslog_setting) == "0");
    CliContext ctx{pin_dir, state_dir, to_syslog, out, err};
    try {
        ctx.warn_block_age_s = parse_warn_block_age(warn_block_age);
        ctx.lock_timeout = parse_lock_timeout(lock_timeout);
        for (const auto& command : commands) {
            if (command.app->parsed()) return command.run(ctx);
        }
    } catch (const UsageError& e) {
        err << "smtpfence: " << e.what() << '\n';
        return kExitUsage;
    } catch (const NotSavedError& e) {
        err << "smtpfence: " << e.what() << '\n';
        return kExitNotSaved;
    } catch (const std::exception& e) {
        err << "smtpfence: " << e.what() << '\n';
        return kExitRuntime;
    }
    return kExitUsage;
}

}  // namespace smtpfence
