// tcpprobe: a tiny TCP listener and client for smtpfence's end-to-end tests
// and lab. No dependencies beyond the C library.
//
//   tcpprobe listen [--banner TEXT] [--die-with-parent] PORT...
//       Listens on every PORT, IPv4 and IPv6 (one dual-stack socket per port,
//       or an IPv4 socket where IPv6 is unavailable). Each accepted connection
//       gets the banner (if any) and is closed. Prints "ready" once all ports
//       listen. Exits 0 on SIGTERM or SIGINT. In TEXT, \r, \n and \\ are
//       escapes; a banner not ending in a newline gets "\r\n" appended.
//       --die-with-parent: get SIGTERM when the parent process dies, so that
//       a test script killed with SIGKILL leaves no listener behind.
//
//   tcpprobe connect [--src ADDR] [--timeout-ms N] HOST PORT
//       One connection attempt, bound to ADDR when given. Prints "connected"
//       and the server's first line if one arrives within 200 ms.
//
//   tcpprobe count [--src ADDR] [--timeout-ms N] [--attempts N] HOST PORT
//       N sequential attempts (default 10); prints "ok=X fail=Y".
//
// Exit codes: 0 connected (connect) / finished (listen, count);
//             1 timed out, refused or unreachable (connect); the reason is on
//               stderr and starts with "timed out", "refused" or "unreachable";
//             2 usage error;
//             3 local failure (socket, bind to --src, listen), so that a test
//               expecting a blocked connection cannot pass on a broken setup.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitLocal = 3;

constexpr int kBannerWaitMs = 200;

const char* const kUsage =
    "usage: tcpprobe listen [--banner TEXT] [--die-with-parent] PORT...\n"
    "       tcpprobe connect [--src ADDR] [--timeout-ms N] HOST PORT\n"
    "       tcpprobe count [--src ADDR] [--timeout-ms N] [--attempts N] HOST PORT\n"
    "exit: 0 ok, 1 timed out/refused, 2 usage error, 3 local failure\n";

struct UsageError {
    std::string message;
};

struct LocalError {
    std::string message;
};

[[noreturn]] void usage_error(const std::string& message) { throw UsageError{message}; }

std::string errno_text(int err) { return std::strerror(err); }

// Strict decimal parse of an unsigned number in [lo, hi].
std::optional<long> parse_number(std::string_view text, long lo, long hi) {
    if (text.empty() || text.size() > 9) return std::nullopt;
    long value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
    }
    if (value < lo || value > hi) return std::nullopt;
    return value;
}

uint16_t parse_port(std::string_view text) {
    auto p = parse_number(text, 1, 65535);
    if (!p) usage_error("bad port '" + std::string(text) + "': expected 1-65535");
    return static_cast<uint16_t>(*p);
}

// Options of one subcommand: "--name VALUE" or "--name=VALUE", anywhere
// before "--"; everything else is positional.
struct Parsed {
    std::vector<std::pair<std::string, std::string>> options;
    std::vector<std::string> positional;

    std::optional<std::string> get(const std::string& name) const {
        std::optional<std::string> found;
        for (const auto& [n, v] : options)
            if (n == name) found = v;  // the last one wins
        return found;
    }
};

// `flags` are options without a value ("--name"); they are stored with "1".
Parsed parse_args(int argc, char** argv, int first, const std::vector<std::string>& known,
                  const std::vector<std::string>& flags = {}) {
    Parsed p;
    bool options_done = false;
    for (int i = first; i < argc; ++i) {
        std::string arg = argv[i];
        if (!options_done && arg == "--") {
            options_done = true;
            continue;
        }
        if (!options_done && arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
            std::string name = arg.substr(2);
            std::optional<std::string> value;
            if (auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            }
            bool is_flag = false;
            for (const auto& f : flags) is_flag = is_flag || f == name;
            if (is_flag) {
                if (value) usage_error("option --" + name + " takes no value");
                p.options.emplace_back(name, "1");
                continue;
            }
            bool is_known = false;
            for (const auto& k : known) is_known = is_known || k == name;
            if (!is_known) usage_error("unknown option --" + name);
            if (!value) {
                if (i + 1 >= argc) usage_error("option --" + name + " needs a value");
                value = argv[++i];
            }
            p.options.emplace_back(name, *value);
            continue;
        }
        if (!options_done && arg.size() > 1 && arg[0] == '-' && arg != "-") {
            usage_error("unknown option " + arg);
        }
        p.positional.push_back(arg);
    }
    return p;
}

// ---------------------------------------------------------------- listen

volatile sig_atomic_t g_stop = 0;

void on_stop_signal(int) { g_stop = 1; }

std::string unescape_banner(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
            char n = text[i + 1];
            if (n == 'r') { out += '\r'; ++i; continue; }
            if (n == 'n') { out += '\n'; ++i; continue; }
            if (n == '\\') { out += '\\'; ++i; continue; }
        }
        out += text[i];
    }
    if (!out.empty() && out.back() != '\n') out += "\r\n";
    return out;
}

int open_listener(uint16_t port) {
    int one = 1;
    int zero = 0;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) {
            throw LocalError{"cannot make the IPv6 socket dual-stack: " + errno_text(errno)};
        }
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_addr = in6addr_any;
        sa.sin6_port = htons(port);
        if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            int e = errno;
            close(fd);
            throw LocalError{"cannot bind [::]:" + std::to_string(port) + ": " + errno_text(e)};
        }
    } else if (errno == EAFNOSUPPORT) {
        // IPv6 disabled: IPv4 only.
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) throw LocalError{"socket: " + errno_text(errno)};
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
        sa.sin_port = htons(port);
        if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            int e = errno;
            close(fd);
            throw LocalError{"cannot bind 0.0.0.0:" + std::to_string(port) + ": " + errno_text(e)};
        }
    } else {
        throw LocalError{"socket: " + errno_text(errno)};
    }
    if (listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        throw LocalError{"listen on port " + std::to_string(port) + ": " + errno_text(e)};
    }
    return fd;
}

int cmd_listen(int argc, char** argv) {
    pid_t parent = getppid();
    Parsed p = parse_args(argc, argv, 2, {"banner"}, {"die-with-parent"});
    if (p.positional.empty()) usage_error("listen needs at least one PORT");
    std::vector<uint16_t> ports;
    for (const auto& t : p.positional) ports.push_back(parse_port(t));
    std::string banner = unescape_banner(p.get("banner").value_or(""));

    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll() must return EINTR
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    if (p.get("die-with-parent")) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) throw LocalError{"prctl: " + errno_text(errno)};
        if (getppid() != parent) return kExitOk;  // the parent is already gone
    }

    std::vector<pollfd> fds;
    for (uint16_t port : ports) fds.push_back({open_listener(port), POLLIN, 0});

    std::fputs("ready\n", stdout);
    std::fflush(stdout);

    while (!g_stop) {
        int n = poll(fds.data(), fds.size(), -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw LocalError{"poll: " + errno_text(errno)};
        }
        for (auto& pfd : fds) {
            if (!(pfd.revents & POLLIN)) continue;
            for (;;) {
                int c = accept4(pfd.fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) break;  // EAGAIN, or a connection reset before accept
                if (!banner.empty()) {
                    // A fresh socket's send buffer always has room for a line.
                    (void)send(c, banner.data(), banner.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                }
                shutdown(c, SHUT_WR);
                close(c);
            }
        }
    }
    for (auto& pfd : fds) close(pfd.fd);
    return kExitOk;
}

// ---------------------------------------------------------------- connect

struct Target {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = AF_UNSPEC;
};

std::optional<Target> resolve(const std::string& host, const char* service, int family, bool passive) {
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? (AI_NUMERICHOST | AI_PASSIVE) : 0;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), service, &hints, &res) != 0 || res == nullptr) return std::nullopt;
    Target t;
    std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
    t.len = res->ai_addrlen;
    t.family = res->ai_family;
    freeaddrinfo(res);
    return t;
}

struct ProbeOptions {
    std::optional<std::string> src;
    int timeout_ms = 1000;
    Target target;
    Target source;
    std::string describe;  // "HOST port PORT [from SRC]"
};

ProbeOptions parse_probe(const Parsed& p) {
    if (p.positional.size() != 2) usage_error("expected HOST PORT");
    ProbeOptions o;
    const std::string& host = p.positional[0];
    uint16_t port = parse_port(p.positional[1]);
    if (auto t = p.get("timeout-ms")) {
        auto v = parse_number(*t, 1, 600000);
        if (!v) usage_error("bad --timeout-ms '" + *t + "': expected 1-600000");
        o.timeout_ms = static_cast<int>(*v);
    }
    o.src = p.get("src");
    int family = AF_UNSPEC;
    if (o.src) {
        auto s = resolve(*o.src, "0", AF_UNSPEC, true);
        if (!s) usage_error("bad --src '" + *o.src + "': expected a numeric IPv4 or IPv6 address");
        o.source = *s;
        family = s->family;
    }
    auto t = resolve(host, std::to_string(port).c_str(), family, false);
    if (!t) {
        usage_error("cannot resolve '" + host + "'" +
                    (o.src ? " as an address of the same family as --src" : std::string()));
    }
    o.target = *t;
    o.describe = host + " port " + std::to_string(port) + (o.src ? " from " + *o.src : std::string());
    return o;
}

enum class Outcome { Connected, TimedOut, Refused };

struct ProbeResult {
    Outcome outcome;
    std::string detail;  // why it failed, or the banner line
};

long long now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Reads up to one line within `wait_ms`; returns it without the line end.
std::string read_line(int fd, int wait_ms) {
    std::string line;
    long long deadline = now_ms() + wait_ms;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) break;
        pollfd pfd{fd, POLLIN, 0};
        int n = poll(&pfd, 1, static_cast<int>(left));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        char buf[512];
        ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (got <= 0) break;
        line.append(buf, static_cast<size_t>(got));
        if (line.find('\n') != std::string::npos) break;
        if (line.size() > 4096) break;
    }
    if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    return line;
}

ProbeResult probe_once(const ProbeOptions& o, bool want_banner) {
    int fd = socket(o.target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw LocalError{"socket: " + errno_text(errno)};
    struct Closer {
        int fd;
        ~Closer() { close(fd); }
    } closer{fd};

    if (o.src) {
        if (bind(fd, reinterpret_cast<const sockaddr*>(&o.source.addr), o.source.len) != 0) {
            throw LocalError{"cannot bind to --src " + *o.src + ": " + errno_text(errno)};
        }
    }
    long long start = now_ms();
    if (connect(fd, reinterpret_cast<const sockaddr*>(&o.target.addr), o.target.len) != 0) {
        if (errno == ECONNREFUSED) return {Outcome::Refused, "refused: " + o.describe};
        if (errno != EINPROGRESS) {
            int e = errno;
            if (e == ENETUNREACH || e == EHOSTUNREACH || e == ETIMEDOUT) {
                return {Outcome::Refused, "unreachable: " + o.describe + ": " + errno_text(e)};
            }
            throw LocalError{"connect to " + o.describe + ": " + errno_text(e)};
        }
        for (;;) {
            long long left = start + o.timeout_ms - now_ms();
            if (left <= 0) {
                return {Outcome::TimedOut,
                        "timed out after " + std::to_string(o.timeout_ms) + " ms: " + o.describe};
            }
            pollfd pfd{fd, POLLOUT, 0};
            int n = poll(&pfd, 1, static_cast<int>(left));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw LocalError{"poll: " + errno_text(errno)};
            if (n > 0) break;
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0) {
            if (soerr == ETIMEDOUT) {
                return {Outcome::TimedOut, "timed out (kernel): " + o.describe};
            }
            return {Outcome::Refused, "refused: " + o.describe + ": " + errno_text(soerr)};
        }
    }
    std::string banner = want_banner ? read_line(fd, kBannerWaitMs) : std::string();
    return {Outcome::Connected, banner};
}

int cmd_connect(int argc, char** argv) {
    Parsed p = parse_args(argc, argv, 2, {"src", "timeout-ms"});
    ProbeOptions o = parse_probe(p);
    ProbeResult r = probe_once(o, true);
    if (r.outcome != Outcome::Connected) {
        std::fprintf(stderr, "%s\n", r.detail.c_str());
        return kExitFailed;
    }
    std::puts("connected");
    if (!r.detail.empty()) std::puts(r.detail.c_str());
    return kExitOk;
}

int cmd_count(int argc, char** argv) {
    Parsed p = parse_args(argc, argv, 2, {"src", "timeout-ms", "attempts"});
    ProbeOptions o = parse_probe(p);
    long attempts = 10;
    if (auto a = p.get("attempts")) {
        auto v = parse_number(*a, 1, 100000);
        if (!v) usage_error("bad --attempts '" + *a + "': expected 1-100000");
        attempts = *v;
    }
    long ok = 0, fail = 0;
    for (long i = 0; i < attempts; ++i) {
        ProbeResult r = probe_once(o, false);
        if (r.outcome == Outcome::Connected) {
            ++ok;
        } else {
            ++fail;
        }
    }
    std::printf("ok=%ld fail=%ld\n", ok, fail);
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return kExitUsage;
    }
    std::string_view cmd = argv[1];
    try {
        if (cmd == "listen") return cmd_listen(argc, argv);
        if (cmd == "connect") return cmd_connect(argc, argv);
        if (cmd == "count") return cmd_count(argc, argv);
        if (cmd == "--help" || cmd == "-h" || cmd == "help") {
            std::fputs(kUsage, stdout);
            return kExitOk;
        }
        usage_error("unknown command '" + std::string(cmd) + "'");
    } catch (const UsageError& e) {
        std::fprintf(stderr, "tcpprobe: %s\n%s", e.message.c_str(), kUsage);
        return kExitUsage;
    } catch (const LocalError& e) {
        std::fprintf(stderr, "tcpprobe: %s\n", e.message.c_str());
        return kExitLocal;
    }
}
