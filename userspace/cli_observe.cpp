// Watching the fence work: stats, top, events, metrics, serve.
#include "cli_commands.h"

namespace smtpfence {

void add_observe_commands(CLI::App& app, std::vector<Command>& commands) {
    (void)app;
    (void)commands;
}

}  // namespace smtpfence
