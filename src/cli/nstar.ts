#!/usr/bin/env node
import { Command } from 'commander';

// The console client. Its subcommands arrive with the runtime daemon and console
// (see the issue "nstar, the TypeScript client library, the examples and the Quickstart").
const program = new Command('nstar')
  .description('Northstar console client (not implemented yet: only this help exists)')
  .version('0.1.0');
program.action(() => {
  program.help();
});
program.parse();
