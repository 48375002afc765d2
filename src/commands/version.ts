import { oclifCommand } from '../cli/oclif.js';
import spec from '../cli/commands/version.js';

export default oclifCommand(spec);
