// The Prometheus exposition: exact samples, label escaping, and the format's
// rules checked by a strict parser (one HELP and TYPE per family, before its
// samples; families not split; counters named _total; valid names, labels and
// values).
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "base/errors.h"
#include "cli/serve.h"
#include "fence/counters.h"
#include "output/metrics.h"

namespace smtpfence {
namespace {

Rule make_rule(const char* cidr, Action action, rule_counters counters, uint32_t rule_id) {
    Rule r;
    r.cidr = parse_cidr(cidr).cidr;
    r.action = action;
    r.counters = counters;
    r.rule_id = rule_id;
    return r;
}

MetricsView sample_view() {
    MetricsView v;
    v.version = "0.1.0";
    v.counters = {.seen = 5120,
                  .passed = 5080,
                  .dropped = 40,
                  .smtp = 310,
                  .smtp_syn = 52,
                  .smtp_attempts = 17,
                  .dropped_attempts = 6,
                  .fragments = 1,
                  .malformed = 2,
                  .would_drop = 3,
                  .events = 1,
                  .events_suppressed = 4,
                  .untracked_syns = 3};
    v.rules = {make_rule("203.0.113.0/24", Action::Block, {40, 40, 0, 0, 0, 5, 5, 0}, 1),
               make_rule("198.51.100.0/22", Action::Limit, {30, 12, 10, 2, 0, 20, 1, 0}, 2),
               make_rule("2001:db8::/32", Action::Allow, {5, 0, 0, 0, 0, 5, 0, 0}, 3)};
    v.rules[1].tracked_keys = 7;
    v.rule_capacity = 65536;
    v.attached_interfaces = 1;
    v.sources_tracked = 9;
    v.sources_capacity = 65536;
    return v;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

bool has_line(const std::string& text, const std::string& line) {
    for (const auto& l : lines_of(text)) {
        if (l == line) return true;
    }
    return false;
}

// A strict reading of the text format 0.0.4; returns the problems found.
std::vector<std::string> exposition_problems(const std::string& text) {
    static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*))");
    static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
    static const std::regex sample(
        R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? ([0-9]+|[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?))");
    std::vector<std::string> problems;
    if (text.empty() || text.back() != '\n') problems.push_back("does not end with a line feed");
    std::map<std::string, std::string> types;
    std::set<std::string> helped, finished, series;
    std::string current;
    for (const auto& line : lines_of(text)) {
        std::smatch m;
        if (std::regex_match(line, m, help)) {
            if (!helped.insert(m[1]).second) problems.push_back("second HELP for " + m[1].str());
        } else if (std::regex_match(line, m, type)) {
            std::string name = m[1];
            if (types.count(name)) problems.push_back("second TYPE for " + name);
            if (!helped.count(name)) problems.push_back("TYPE before HELP for " + name);
            if (!current.empty()) finished.insert(current);
            current = name;
            types[name] = m[2];
            if (m[2] == "counter" && !name.ends_with("_total")) problems.push_back("counter without _total: " + name);
            if (m[2] == "gauge" && name.ends_with("_total")) problems.push_back("gauge named _total: " + name);
        } else if (std::regex_match(line, m, sample)) {
            std::string name = m[1];
            if (name != current) problems.push_back("sample of " + name + " outside its family block");
            if (finished.count(name)) problems.push_back("family " + name + " split");
            if (!series.insert(name + m[2].str()).second) problems.push_back("duplicate series " + line);
        } else {
            problems.push_back("not a valid line: '" + line + "'");
        }
    }
    for (const auto& [name, kind] : types) {
        if (!name.starts_with("smtpfence_")) problems.push_back("no smtpfence_ prefix: " + name);
    }
    return problems;
}

}  // namespace

TEST(EscapeLabelValue, EscapesBackslashQuoteAndLineFeed) {
    EXPECT_EQ(escape_label_value("203.0.113.0/24"), "203.0.113.0/24");
    EXPECT_EQ(escape_label_value(R"(a\b"c)"), R"(a\\b\"c)");
    EXPECT_EQ(escape_label_value("one\ntwo"), "one\\ntwo");
    EXPECT_EQ(escape_label_value(""), "");
}

TEST(EscapeHelp, EscapesBackslashAndLineFeedButNotQuotes) {
    EXPECT_EQ(escape_help(R"(say "hi"\now)"), R"(say "hi"\\now)");
    EXPECT_EQ(escape_help("two\nlines"), "two\\nlines");
}

TEST(MetricsText, GlobalCountersWithTheirNumbers) {
    std::string text = metrics_text(sample_view());
    EXPECT_TRUE(has_line(text, R"(smtpfence_info{version="0.1.0"} 1)")) << text;
    EXPECT_TRUE(has_line(text, "smtpfence_attached_interfaces 1"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_packets_total{result="passed"} 5080)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_packets_total{result="dropped"} 40)"));
    EXPECT_TRUE(has_line(text, "smtpfence_smtp_segments_total 310"));
    EXPECT_TRUE(has_line(text, "smtpfence_syn_packets_total 52"));
    EXPECT_TRUE(has_line(text, "smtpfence_connection_attempts_total 17"));
    EXPECT_TRUE(has_line(text, "smtpfence_dropped_attempts_total 6"));
    EXPECT_TRUE(has_line(text, "# TYPE smtpfence_connection_attempts_total counter"));
    EXPECT_TRUE(has_line(text, "smtpfence_fragments_total 1"));
    EXPECT_TRUE(has_line(text, "smtpfence_malformed_total 2"));
    EXPECT_TRUE(has_line(text, "smtpfence_would_drop_total 3"));
    EXPECT_TRUE(has_line(text, "smtpfence_events_total 1"));
    EXPECT_TRUE(has_line(text, "smtpfence_events_suppressed_total 4"));
    EXPECT_TRUE(has_line(text, "smtpfence_untracked_syn_packets_total 3"));
    EXPECT_TRUE(has_line(text, "smtpfence_sources_tracked 9"));
    EXPECT_TRUE(has_line(text, "smtpfence_sources_capacity 65536"));
    EXPECT_TRUE(has_line(text, "smtpfence_rules_capacity 65536"));
    EXPECT_TRUE(has_line(text, "# TYPE smtpfence_packets_total counter"));
    EXPECT_TRUE(has_line(text, "# TYPE smtpfence_sources_tracked gauge"));
}

TEST(MetricsText, EveryCounterOfTheTableIsExported) {
    std::string text = metrics_text(sample_view());
    for (const auto& counter : kGlobalCounters) {
        if (!counter.metric) continue;  // derived from others
        EXPECT_TRUE(has_line(text, std::string("# TYPE ") + counter.metric + " counter")) << counter.name;
    }
    for (const auto& counter : kRuleCounters) {
        EXPECT_TRUE(has_line(text, std::string("# TYPE ") + counter.metric + " counter")) << counter.name;
    }
}

TEST(MetricsText, RulesLabelledByCidrAndAction) {
    std::string text = metrics_text(sample_view());
    EXPECT_TRUE(has_line(text, R"(smtpfence_rules{action="block"} 1)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rules{action="allow"} 1)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rules{action="limit"} 1)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rule_matched_total{rule="203.0.113.0/24",action="block"} 40)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rule_dropped_total{rule="203.0.113.0/24",action="block"} 40)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rule_connection_attempts_total{rule="203.0.113.0/24",action="block"} 5)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rule_dropped_attempts_total{rule="203.0.113.0/24",action="block"} 5)"));
    EXPECT_TRUE(
        has_line(text, R"(smtpfence_rule_connection_attempts_total{rule="198.51.100.0/22",action="limit"} 20)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rule_dropped_attempts_total{rule="198.51.100.0/22",action="limit"} 1)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rule_would_drop_attempts_total{rule="2001:db8::/32",action="allow"} 0)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rule_rate_dropped_total{rule="198.51.100.0/22",action="limit"} 10)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rule_conns_dropped_total{rule="198.51.100.0/22",action="limit"} 2)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rule_would_drop_total{rule="2001:db8::/32",action="allow"} 0)"));
    EXPECT_TRUE(has_line(text, R"(smtpfence_rule_tracked_keys{rule="198.51.100.0/22",action="limit"} 7)"));
    // Tracked keys are a limit's business only.
    EXPECT_EQ(text.find(R"(smtpfence_rule_tracked_keys{rule="203.0.113.0/24")"), std::string::npos);
}

TEST(MetricsText, NoRuleStillDeclaresEveryFamily) {
    MetricsView v = sample_view();
    v.rules.clear();
    std::string text = metrics_text(v);
    EXPECT_TRUE(has_line(text, R"(smtpfence_rules{action="block"} 0)"));
    EXPECT_TRUE(has_line(text, "# TYPE smtpfence_rule_matched_total counter"));
    EXPECT_EQ(text.find("smtpfence_rule_matched_total{"), std::string::npos);
    auto problems = exposition_problems(text);
    EXPECT_TRUE(problems.empty()) << problems.front();
}

TEST(MetricsText, IsValidExposition) {
    std::string text = metrics_text(sample_view());
    auto problems = exposition_problems(text);
    EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << text;
}

// Only a host that runs the fleet agent has the fleet's gauges.
TEST(MetricsText, FleetGaugesWhenTheAgentRuns) {
    MetricsView v = sample_view();
    EXPECT_EQ(metrics_text(v).find("smtpfence_fleet_"), std::string::npos);
    AgentState f;
    f.connected = false;
    f.since_unix = 1000;
    f.revision = 42;
    f.skipped = {"a", "b"};
    v.fleet = f;
    v.now_unix = 1090;
    std::string text = metrics_text(v);
    EXPECT_TRUE(has_line(text, "smtpfence_fleet_store_connected 0")) << text;
    EXPECT_TRUE(has_line(text, "smtpfence_fleet_store_state_seconds 90")) << text;
    EXPECT_TRUE(has_line(text, "smtpfence_fleet_revision_applied 42")) << text;
    EXPECT_TRUE(has_line(text, "smtpfence_fleet_rules_skipped 2")) << text;
    EXPECT_TRUE(has_line(text, "smtpfence_fleet_rules_failed 0")) << text;
    auto problems = exposition_problems(text);
    EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << text;
}

TEST(MetricsText, EscapesAWeirdVersionLabel) {
    MetricsView v = sample_view();
    v.version = "1.0 \"beta\"\\x\n";
    std::string text = metrics_text(v);
    EXPECT_TRUE(has_line(text, R"(smtpfence_info{version="1.0 \"beta\"\\x\n"} 1)")) << text;
    auto problems = exposition_problems(text);
    EXPECT_TRUE(problems.empty()) << problems.front();
}

TEST(ParseListenAddress, AcceptsV4V6AndPortOnly) {
    ListenAddress a = parse_listen_address("127.0.0.1:9464");
    EXPECT_EQ(a.host, "127.0.0.1");
    EXPECT_EQ(a.port, 9464);
    a = parse_listen_address("[::1]:80");
    EXPECT_EQ(a.host, "::1");
    EXPECT_EQ(a.port, 80);
    a = parse_listen_address(":9464");
    EXPECT_EQ(a.host, "0.0.0.0");
    EXPECT_EQ(a.port, 9464);
}

TEST(ParseListenAddress, RejectsWhatIsNotAnAddressAndPort) {
    for (const char* bad : {"", "9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "::1:9464",
                            "[::1]", "[::1]9464", "localhost:9464", "300.1.2.3:80", "127.0.0.1:80x"}) {
        EXPECT_THROW(parse_listen_address(bad), UsageError) << bad;
    }
}

}  // namespace smtpfence
