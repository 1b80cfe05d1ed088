"""Real local servers standing in for AWS in tests: moto in server mode and a fake IMDSv2."""
