/*
 * tests/sql/refusal.sql
 *    Included by the tests (\ir): pg_temp.refusal(sql) runs one statement in
 *    a subtransaction and returns the name of the constraint that refused it,
 *    else its SQLSTATE, or 'ok' when it succeeded (undone either way), so a
 *    row that fails for another reason than the one under test does not pass.
 */
CREATE FUNCTION pg_temp.refusal(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	cname text;
	state text;
BEGIN
	BEGIN
		EXECUTE stmt;
		RAISE EXCEPTION USING ERRCODE = 'RFOK0';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS cname = CONSTRAINT_NAME, state = RETURNED_SQLSTATE;
		IF state = 'RFOK0' THEN
			RETURN 'ok';
		END IF;
		RETURN coalesce(nullif(cname, ''), state);
	END;
END $$;
