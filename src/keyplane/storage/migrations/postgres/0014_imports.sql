-- identity source imports (issue 10): reserved; the imports helper writes it
SELECT 1;
