#!/usr/bin/env node
import { Command } from 'commander';

// The runtime daemon. It arrives with the issue "The runtime daemon and its console".
const program = new Command('northstar')
  .description('Northstar container runtime (not implemented yet: only this help exists)')
  .option('-c, --config <file>', 'runtime configuration (TOML)')
  .version('0.1.0');
program.action(() => {
  program.help();
});
program.parse();
