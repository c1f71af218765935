#include "cli/serve.h"

// Debian's cpp-httplib is a compiled library built with OpenSSL, zlib and
// brotli support, and those switches change the layout of its classes: this
// file must see the same ones (pkg-config cpp-httplib --cflags).
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#error "compile with the flags of `pkg-config --cflags cpp-httplib`: the library's class layouts depend on them"
#endif
#include <httplib.h>

#include <arpa/inet.h>
#include <atomic>
#include <charconv>
#include <memory>
#include <mutex>
#include <thread>

#include "base/errors.h"
#include "fence/lists.h"
#include "fence/observe.h"
#include "fence/rule_store.h"
#include "fence/state_file.h"
#include "output/json.h"
#include "output/metrics.h"
#include "output/observe_output.h"
#include "output/rules.h"
#include "output/terminal.h"
#include "text/durations.h"

namespace smtpfence {

namespace {

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kJsonContentType = "application/json";
constexpr double kMaxTopInterval = 10;

struct BadRequest : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <typename Number>
Number query_number(const httplib::Request& req, const char* name, Number fallback, Number lo, Number hi) {
    if (!req.has_param(name)) return fallback;
    std::string text = req.get_param_value(name);
    Number value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi) {
        std::ostringstream msg;
        msg << "bad " << name << " '" << text << "': expected a number from " << lo << " to " << hi;
        throw BadRequest(msg.str());
    }
    return value;
}

std::string top_body(const std::string& pin_dir, const std::string& state_dir, const httplib::Request& req) {
    double interval = query_number(req, "interval", 1.0, 0.1, kMaxTopInterval);
    TopQuery query;
    query.limit = query_number<size_t>(req, "n", 10, 1, 100000);
    if (req.has_param("port")) query.port = query_number<uint16_t>(req, "port", 0, 1, 65535);
    Fence fence = Fence::open(pin_dir);
    SourceTable sources(pin_dir);
    SourceSnapshot before = sources.snapshot();
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    SourceSnapshot after = sources.snapshot();
    const FenceLists lists = FenceLists::open(pin_dir, list_store_dir(state_dir, pin_dir));
    TopView view = compute_top(before, after, fence.rules(), query, sources.capacity(), lists.names_by_rule_id());
    return json_text(top_json(view, monotonic_to_unix_offset_ns())) + "\n";
}

}  // namespace

void register_serve(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<ServeOptions>();
    auto* cmd = app.add_subcommand("serve", "HTTP: /metrics (Prometheus), /rules and /top (JSON)");
    cmd->add_option("--listen", options->listen, "ADDR:PORT, e.g. 127.0.0.1:9464 or [::1]:9464")->required();
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_serve(*options, ctx); }});
}

int run_serve(const ServeOptions& options, const CliContext& ctx) {
    ListenAddress address = parse_listen_address(options.listen);
    serve(ctx.pin_dir, ctx.state_dir, address, ctx.out, ctx.err, ctx.warn_block_age_s);
    return kExitOk;
}

ListenAddress parse_listen_address(std::string_view text) {
    const std::string example = " (e.g. 127.0.0.1:9464, [::1]:9464 or :9464)";
    ListenAddress addr;
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            throw UsageError("bad --listen '" + std::string(text) + "': expected [IPV6]:PORT" + example);
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        size_t colon = text.rfind(':');
        if (colon == std::string_view::npos || text.substr(0, colon).find(':') != std::string_view::npos) {
            throw UsageError("bad --listen '" + std::string(text) + "': expected ADDR:PORT" + example);
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    addr.host = host.empty() ? "0.0.0.0" : std::string(host);
    unsigned char buf[16];
    if (inet_pton(AF_INET, addr.host.c_str(), buf) != 1 && inet_pton(AF_INET6, addr.host.c_str(), buf) != 1) {
        throw UsageError("bad --listen address '" + addr.host + "': expected an IPv4 or IPv6 address" + example);
    }
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), addr.port);
    if (ec != std::errc() || end != port.data() + port.size() || addr.port < 1 || addr.port > 65535) {
        throw UsageError("bad --listen port '" + std::string(port) + "': expected 1-65535" + example);
    }
    return addr;
}

void serve(const std::string& pin_dir, const std::string& state_dir, const ListenAddress& address, std::ostream& out,
           std::ostream& err, uint64_t warn_block_age_s) {
    Fence::open(pin_dir);  // fail now, not at the first scrape, when there is no instance
    // Before the server starts its threads, so that they inherit the blocked signals.
    StopSignals signals;
    std::mutex err_mutex;
    httplib::Server server;

    // Every handler: the body, or the error as plain text (400 for a bad
    // query, 503 when the maps cannot be read, e.g. the instance was removed).
    auto handle = [&](auto produce, const char* content_type) {
        return [&, produce, content_type](const httplib::Request& req, httplib::Response& res) {
            try {
                res.set_content(produce(req), content_type);
            } catch (const BadRequest& e) {
                res.status = 400;
                res.set_content(std::string(e.what()) + "\n", "text/plain");
            } catch (const std::exception& e) {
                res.status = 503;
                res.set_content(std::string(e.what()) + "\n", "text/plain");
                std::lock_guard lock(err_mutex);
                err << "smtpfence: " << req.path << ": " << e.what() << '\n';
            }
        };
    };
    server.Get(
        "/metrics",
        handle([&](const httplib::Request&) { return metrics_text(gather_metrics(Fence::open(pin_dir), state_dir)); },
               kMetricsContentType));
    server.Get("/rules",
               handle(
                   [&](const httplib::Request&) {
                       return json_text(rules_json(Fence::open(pin_dir).rules(), unix_now(), warn_block_age_s)) + "\n";
                   },
                   kJsonContentType));
    server.Get("/top", handle([&](const httplib::Request& req) { return top_body(pin_dir, state_dir, req); }, kJsonContentType));
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (res.status == 404) {
            res.set_content("no such page: " + req.path + "; smtpfence serves /metrics, /rules and /top\n",
                            "text/plain");
        }
    });

    std::string shown = address.host.find(':') == std::string::npos ? address.host : "[" + address.host + "]";
    shown += ":" + std::to_string(address.port);
    if (!server.bind_to_port(address.host, address.port)) {
        throw RuntimeError("cannot listen on " + shown +
                           ": the port is in use, or the address is not configured in this network namespace");
    }
    out << "serving http://" << shown << "/metrics, /rules and /top; stop with Ctrl-C or SIGTERM" << std::endl;

    // stop() only works once the accept loop runs, so it is repeated until
    // the loop ends.
    std::atomic<bool> done{false};
    std::thread stopper([&] {
        bool stop = false;
        while (!done) {
            if (!stop) stop = signals.wait(std::chrono::milliseconds(200));
            if (stop) {
                server.stop();
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    });
    bool ok = server.listen_after_bind();
    done = true;
    stopper.join();
    if (!ok && !signals.stopped()) throw RuntimeError("the HTTP server on " + shown + " stopped unexpectedly");
}

}  // namespace smtpfence
