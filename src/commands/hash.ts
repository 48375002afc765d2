import { oclifCommand } from '../cli/oclif.js';
import spec from '../cli/commands/hash.js';

export default oclifCommand(spec);
