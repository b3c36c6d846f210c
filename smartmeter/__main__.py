from smartmeter.cli import main

raise SystemExit(main())
