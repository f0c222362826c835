from wattbench.cli.main import main

raise SystemExit(main())
