-- SCIM 2.0 resources (issue 10): reserved; the SCIM helper writes it
SELECT 1;
