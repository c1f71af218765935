#include "output/lists.h"

#include "output/table.h"
#include "text/durations.h"

namespace smtpfence {

namespace {

std::string state_of(const ListStatus& list) {
    if (!list.in_force) return "stored only (run `smtpfence restore`)";
    if (list.stored.created_unix == 0) return "in force, no file (import it again)";
    return "in force";
}

}  // namespace

std::string lists_text(const std::vector<ListStatus>& lists, uint64_t now_unix) {
    if (lists.empty()) return "no lists (import one with `smtpfence import FILE --as NAME`)\n";
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "ACTION", "PREFIXES", "MATCHED", "DROPPED", "ATTEMPTS", "AGE", "EXPIRES", "SOURCE"}};
    for (const ListStatus& list : lists) {
        const uint64_t entries = list.in_force ? list.v4_prefixes + list.v6_prefixes : list.stored.entries;
        const uint64_t age = list.stored.created_unix && list.stored.created_unix <= now_unix
                                 ? now_unix - list.stored.created_unix
                                 : 0;
        rows.push_back({list.stored.name, std::string(action_name(list.stored.action)), std::to_string(entries),
                        std::to_string(list.counters.matched), std::to_string(list.counters.dropped),
                        std::to_string(list.counters.attempts), list.stored.created_unix ? format_age(age) : "-",
                        list.stored.expires_unix ? format_time_left(list.stored.expires_unix, now_unix) : "never",
                        list.stored.source.empty() ? "-" : list.stored.source});
    }
    std::string text = table(rows, {false, false, true, true, true, true, true, false, false});
    for (const ListStatus& list : lists) {
        if (!list.in_force || list.stored.created_unix == 0) text += list.stored.name + ": " + state_of(list) + "\n";
    }
    return text;
}

nlohmann::ordered_json lists_json(const std::vector<ListStatus>& lists, uint64_t now_unix) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const ListStatus& list : lists) {
        nlohmann::ordered_json j;
        j["name"] = list.stored.name;
        j["action"] = action_name(list.stored.action);
        j["in_force"] = list.in_force;
        j["prefixes_v4"] = list.in_force ? list.v4_prefixes : 0;
        j["prefixes_v6"] = list.in_force ? list.v6_prefixes : 0;
        j["entries_in_file"] = list.stored.entries;
        j["reason"] = list.stored.reason;
        j["created_by"] = list.stored.by;
        j["origin"] = list.stored.origin;
        j["created_unix"] = list.stored.created_unix;
        j["expires_unix"] = list.stored.expires_unix;
        j["expired"] = list.stored.expires_unix != 0 && list.stored.expires_unix <= now_unix;
        j["source"] = list.stored.source;
        j["source_sha256"] = list.stored.source_sha256;
        j["rule_id"] = list.rule.rule_id;
        j["matched"] = list.counters.matched;
        j["dropped"] = list.counters.dropped;
        j["attempts"] = list.counters.attempts;
        j["dropped_attempts"] = list.counters.dropped_attempts;
        out.push_back(j);
    }
    return out;
}

}  // namespace smtpfence
