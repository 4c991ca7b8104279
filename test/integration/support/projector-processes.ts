import { type ChildProcess, spawn } from 'node:child_process';

/**
 * Projectors as their own OS processes, as operators run them
 * (`cqrs-migrate project --store S --config F`, the definition named in the config file), with
 * their stderr kept so a test can show it and assert no error was logged.
 */
export class ProjectorProcesses {
  readonly stderr: string[] = [];

  spawn(configFile: string, store: string): ChildProcess {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', 'project', '--store', store, '--config', configFile],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } },
    );
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr.push(`[${store} ${child.pid}] ${d.toString()}`);
    });
    return child;
  }
}

/** Resolves once the process has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}
