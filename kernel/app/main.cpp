#include "profagent/kernel/cli.hpp"

int main(int argc, char** argv) { return profagent::kernel::run_cli(argc, argv); }
