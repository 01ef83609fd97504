// cnictl: runs CNI networks by hand the way a runtime does, and Docker's network commands.
import CnictlCommands

Cnictl.main()
