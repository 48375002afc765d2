import { oclifCommand } from '../cli/oclif.js';
import spec from '../cli/commands/dump.js';

export default oclifCommand(spec);
