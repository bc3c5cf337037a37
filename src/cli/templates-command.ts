import type { Command } from 'commander';
import { loadConfig, remoteSrcOptionsOf } from '../config/config.js';
import { checkDirectory, formatProblem } from '../templates/check-directory.js';
import { printError } from './output.js';

/** `mailroom templates check`: validates every response file without the engine or the database. */
export function addTemplatesCommands(program: Command): void {
  const templates = program.command('templates').description('response files (MAILROOM_TEMPLATES_DIR)');
  templates
    .command('check')
    .description('load and check every response file: XML, Src paths, split identifiers; exits 1 on errors')
    .option('--dir <dir>', 'the templates directory (default: MAILROOM_TEMPLATES_DIR or ./templates)')
    .option('--remote-src', 'also fetch http/https Src (default: MAILROOM_TEMPLATES_REMOTE_SRC)')
    .action(async (opts: { dir?: string; remoteSrc?: boolean }, command: Command) => {
      try {
        const config = loadConfig();
        const dir = opts.dir ?? config.templatesDir;
        const result = await checkDirectory(dir, {
          remoteSrc: opts.remoteSrc ?? config.templatesRemoteSrc,
          ...remoteSrcOptionsOf(config),
        });
        if (command.optsWithGlobals<{ json?: boolean }>().json) {
          process.stdout.write(`${JSON.stringify({ dir, ...result }, null, 2)}\n`);
        } else {
          for (const problem of result.problems) process.stdout.write(`${formatProblem(problem)}\n`);
          process.stdout.write(
            `${result.files.length} response files, ${result.errors} errors, ${result.warnings} warnings (${dir})\n`,
          );
        }
        if (result.errors > 0) process.exitCode = 1;
      } catch (err) {
        process.exitCode = printError(err);
      }
    });
}
