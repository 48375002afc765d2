import { oclifCommand } from '../cli/oclif.js';
import spec from '../cli/commands/repair.js';

export default oclifCommand(spec);
