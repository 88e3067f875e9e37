import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string, name = 'autoloader'): Logger {
  return pino({ name, level });
}
