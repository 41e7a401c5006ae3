// The `rrts` command line: RoadRunner's commands and flags (docs/compatibility.md §2), one file per command.
import { Command } from 'commander';
import { RRTS_VERSION, RR_COMPAT_VERSION } from '../version.js';
import { addGlobalOptions, type GlobalOptions } from './options.js';
import { serveCommand } from './serve.js';
import { stopCommand } from './stop.js';
import { workersCommand, type WorkersOptions } from './workers.js';
import { resetCommand } from './reset.js';
import { jobsCommand, type JobsOptions } from './jobs.js';

const program = new Command('rrts');
// Every command's help lists the global flags too (-c, -w, -o, …), as rr's does.
program.configureHelp({ showGlobalOptions: true });
addGlobalOptions(program)
  .description('rrts: a drop-in RoadRunner replacement (PHP application server and process manager)')
  .version(
    `rrts version ${RRTS_VERSION} (RoadRunner ${RR_COMPAT_VERSION} compatible), node ${process.version}, OS: ${process.platform}, arch: ${process.arch}`,
    '-v, --version',
  );

const globals = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();

program
  .command('serve')
  .description('start the server')
  .action((_opts, cmd: Command) => {
    const opts = globals(cmd);
    if (opts.debug) process.stderr.write('rrts: -d (the pprof debug server) is not supported by rrts; ignored\n');
    return serveCommand(opts);
  });

program
  .command('workers')
  .description('list the workers of each plugin')
  .argument('[plugins...]')
  .option('-i, --interactive', 'refresh every second')
  .option('--json', 'print {"<plugin>": [worker…]} as JSON')
  .action((plugins: string[], opts: WorkersOptions, cmd: Command) => workersCommand(plugins, opts, globals(cmd)));

program
  .command('reset')
  .description('reset the workers of each plugin')
  .argument('[plugins...]')
  .action((plugins: string[], _opts, cmd: Command) => resetCommand(plugins, globals(cmd)));

program
  .command('stop')
  .description('stop the server started with -p (reads .pid; -f forces the stop)')
  .action((_opts, cmd: Command) => stopCommand(globals(cmd)));

program
  .command('jobs')
  .description('list, pause, resume or destroy jobs pipelines')
  .option('--list', 'list the pipelines')
  .option('--pause [pipelines]', 'pause pipe1,pipe2')
  .option('--resume [pipelines]', 'resume pipe1,pipe2')
  .option('--destroy [pipelines]', 'destroy pipe1,pipe2')
  .action((opts: JobsOptions, cmd: Command) => jobsCommand(opts, globals(cmd)));

await program.parseAsync(process.argv);
