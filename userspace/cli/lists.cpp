#include "cli/lists.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "base/errors.h"
#include "base/sha256.h"
#include "fence/lists.h"
#include "fence/provenance.h"
#include "fence/state_file.h"
#include "output/json.h"
#include "output/lists.h"
#include "text/durations.h"
#include "text/prefix_list.h"
#include "text/rule_options.h"
#include "text/utf8.h"

namespace smtpfence {

namespace {

// Skipped lines shown in full; the rest are counted.
constexpr size_t kSkippedShown = 20;
// Too-broad prefixes named in the refusal; the rest are counted.
constexpr size_t kBroadShown = 5;

std::string read_input(const std::string& file) {
    if (file == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
    std::ifstream in(file, std::ios::binary);
    if (!in) throw UsageError(describe_errno("read " + file, errno) + "; nothing was imported");
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) throw RuntimeError(describe_errno("read " + file, errno) + "; nothing was imported");
    return std::move(content).str();
}

Action list_action(const std::string& text) {
    if (text == "block") return Action::Block;
    if (text == "allow") return Action::Allow;
    throw UsageError("--action " + text + ": a list blocks or allows (--action block|allow)");
}

// A block list that holds 0.0.0.0/0 (a bad line in a generated file, say)
// would fence every sender: as for `block`, that takes --force.
void check_list_breadth(const PrefixList& prefixes, Action action, bool force, const std::string& origin) {
    if (action != Action::Block || force) return;
    std::vector<std::string> broad;
    for (const auto* family : {&prefixes.v4, &prefixes.v6}) {
        for (const Cidr& cidr : *family) {
            if (needs_force(cidr)) broad.push_back(format_cidr(cidr));
        }
    }
    if (broad.empty()) return;
    std::string named;
    for (size_t i = 0; i < broad.size() && i < kBroadShown; ++i) named += (i ? ", " : "") + broad[i];
    if (broad.size() > kBroadShown) named += " and " + std::to_string(broad.size() - kBroadShown) + " more";
    throw UsageError(origin + " blocks prefixes broader than /8 (IPv4) or /32 (IPv6): " + named +
                     "; check the file, or import it with --force; nothing was imported");
}

std::string plural(size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

void register_import(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<ImportOptions>();
    auto* cmd = app.add_subcommand("import", "make a prefix list file (one prefix a line) a named list");
    cmd->add_option("FILE", options->file, "the list, or - for stdin (`#` and `;` start comments)")->required();
    cmd->add_option("--as", options->name, "the list's name: importing it again replaces it")->required();
    cmd->add_option("--action", options->action, "block (default) or allow");
    cmd->add_option("--reason", options->reason, "why the list is there (shown by `lists`, audited)");
    auto* for_opt = cmd->add_option("--for", options->for_text, "the list expires after this long (90m, 12h, 7d)");
    auto* until_opt = cmd->add_option("--until", options->until, "the list expires then (2026-12-01T08:00, UTC)");
    for_opt->excludes(until_opt);
    cmd->add_flag("--skip-invalid", options->skip_invalid, "load the valid lines and list the invalid ones");
    cmd->add_flag("--force", options->force, "allow prefixes broader than /8 or /32 in a block list");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_import(*options, ctx); }});
}

int run_import(const ImportOptions& options, const CliContext& ctx) {
    check_list_name(options.name);
    const Action action = list_action(options.action);
    check_reason(options.reason);
    // The file's name is recorded as the list's source, shown in JSON.
    check_utf8("the file name", options.file,
               "rename the file, or import it from stdin (smtpfence import - --as NAME < FILE)");
    const uint64_t now = unix_now();
    const uint64_t expires = rule_deadline(options.for_text, options.until, now);
    const std::string origin = origin_name(options.file);
    const std::string content = read_input(options.file);
    PrefixList prefixes = parse_prefix_list(content, options.file == "-" ? "-" : options.file, options.skip_invalid);
    if (prefixes.v4.empty() && prefixes.v6.empty()) {
        throw UsageError(origin + " holds no prefix (a failed download?): the list is left as it is; to remove it, "
                                  "`smtpfence unimport " + options.name + "`");
    }
    check_list_breadth(prefixes, action, options.force, origin);

    StoredList list;
    list.name = options.name;
    list.action = action;
    list.reason = options.reason;
    list.by = invoking_user();
    list.origin = invoking_origin();
    list.created_unix = now;
    list.expires_unix = expires;
    list.source = options.file == "-" ? "stdin" : options.file;
    list.source_sha256 = sha256_hex(content);
    list.v4 = std::move(prefixes.v4);
    list.v6 = std::move(prefixes.v6);
    const size_t total = list.v4.size() + list.v6.size();

    FenceSession session = open_session(ctx);
    const ImportSummary summary = session.lists().import(list);
    session.record("import", "list " + list.name + " " + action_name(action) + " from " + list.source + " sha256 " +
                                 list.source_sha256 + ": " + std::to_string(total) + " prefixes (added " +
                                 std::to_string(summary.added) + ", removed " + std::to_string(summary.removed) +
                                 ", unchanged " + std::to_string(summary.unchanged) + ")");
    session.commit();

    ctx.out << (summary.created ? "imported " : "updated ") << list.name << " (" << action_name(action)
            << "): " << plural(total, "prefix", "prefixes") << " (" << list.v4.size() << " IPv4, " << list.v6.size()
            << " IPv6); added " << summary.added << ", removed " << summary.removed << ", unchanged "
            << summary.unchanged << ", skipped " << prefixes.skipped.size();
    if (prefixes.duplicates) ctx.out << ", duplicates " << prefixes.duplicates;
    if (expires) ctx.out << "; expires " << format_time_left(expires, now);
    ctx.out << '\n';
    for (size_t i = 0; i < prefixes.skipped.size() && i < kSkippedShown; ++i) {
        const SkippedLine& s = prefixes.skipped[i];
        ctx.err << "skipped " << origin << ":" << s.line << ": " << s.error << ": `" << s.text << "`\n";
    }
    if (prefixes.skipped.size() > kSkippedShown) {
        ctx.err << "skipped " << prefixes.skipped.size() - kSkippedShown << " more invalid lines\n";
    }
    return kExitOk;
}

void register_unimport(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<UnimportOptions>();
    auto* cmd = app.add_subcommand("unimport", "remove an imported list");
    cmd->add_option("NAME", options->name, "the list's name (see `smtpfence lists`)")->required();
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_unimport(*options, ctx); }});
}

int run_unimport(const UnimportOptions& options, const CliContext& ctx) {
    check_list_name(options.name);
    FenceSession session = open_session(ctx);
    if (!session.lists().unimport(options.name)) {
        throw RuntimeError("no list " + options.name + " (see `smtpfence lists`); nothing was removed");
    }
    session.record("unimport", "list " + options.name);
    session.commit();
    ctx.out << "removed list " << options.name << '\n';
    return kExitOk;
}

void register_lists(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<ListsOptions>();
    auto* cmd = app.add_subcommand("lists", "show the imported lists: prefixes, source, counters");
    cmd->add_flag("--json", options->json, "machine-readable output");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_lists(*options, ctx); }});
}

int run_lists(const ListsOptions& options, const CliContext& ctx) {
    Fence::open(ctx.pin_dir);  // says how to set one up when there is none
    const FenceLists lists = FenceLists::open(ctx.pin_dir, list_store_dir(ctx.state_dir, ctx.pin_dir));
    const uint64_t now = unix_now();
    if (options.json) {
        print_json(ctx.out, lists_json(lists.lists(), now));
    } else {
        ctx.out << lists_text(lists.lists(), now);
    }
    return kExitOk;
}

}  // namespace smtpfence
