// OAuthDiagnosis module.
