from rhythmswitch.cli import main

raise SystemExit(main())
