#include "cli/list.h"

#include <ctime>
#include <memory>

#include "base/errors.h"
#include "fence/lists.h"
#include "fence/rule_store.h"
#include "output/json.h"
#include "output/rules.h"
#include "fence/state_file.h"
#include "text/prefix_list.h"

namespace smtpfence {

void register_list(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<ListOptions>();
    auto* cmd = app.add_subcommand("list", "rules with their counters");
    cmd->add_flag("--json", options->json, "machine-readable output");
    auto* list = cmd->add_option("--list", options->list, "the prefixes of this imported list instead (see `lists`)");
    cmd->add_option("--offset", options->offset, "with --list: skip this many prefixes (IPv4 first)")->needs(list);
    cmd->add_option("--count", options->count, "with --list: show at most this many")->capture_default_str()->needs(list);
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_list(*options, ctx); }});
}

namespace {

// A page of an imported list's prefixes, as its file holds them.
int list_prefixes(const ListOptions& options, const CliContext& ctx) {
    check_list_name(options.list);
    Fence::open(ctx.pin_dir);  // says how to set one up when there is none
    const FenceLists lists = FenceLists::open(ctx.pin_dir, list_store_dir(ctx.state_dir, ctx.pin_dir));
    const std::optional<StoredList> stored = lists.load(options.list);
    if (!stored) throw RuntimeError("no list " + options.list + " (see `smtpfence lists`)");
    std::vector<std::string> page;
    for (const auto* family : {&stored->v4, &stored->v6}) {
        for (const Cidr& cidr : *family) {
            const size_t position = &cidr - family->data() + (family == &stored->v6 ? stored->v4.size() : 0);
            if (position >= options.offset && page.size() < options.count) page.push_back(format_cidr(cidr));
        }
    }
    if (options.json) {
        nlohmann::ordered_json j;
        j["list"] = stored->name;
        j["prefixes_total"] = stored->v4.size() + stored->v6.size();
        j["offset"] = options.offset;
        j["prefixes"] = page;
        print_json(ctx.out, j);
    } else {
        for (const std::string& p : page) ctx.out << p << '\n';
    }
    return kExitOk;
}

}  // namespace

int run_list(const ListOptions& options, const CliContext& ctx) {
    if (!options.list.empty()) return list_prefixes(options, ctx);
    // Read without the lock (see run_status).
    auto rules = Fence::open(ctx.pin_dir).rules();
    auto now = static_cast<uint64_t>(std::time(nullptr));
    if (options.json) {
        print_json(ctx.out, rules_json(rules, now, ctx.warn_block_age_s));
    } else {
        ctx.out << rules_text(rules, now, ctx.warn_block_age_s);
    }
    return kExitOk;
}

}  // namespace smtpfence
