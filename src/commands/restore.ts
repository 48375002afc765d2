import { oclifCommand } from '../cli/oclif.js';
import spec from '../cli/commands/restore.js';

export default oclifCommand(spec);
