! momentum-report: reads "mass,velocity" CSV rows (with a header line) on
! stdin, like momentum, and writes its results to named files, the way many
! scientific codes do, instead of to stdout:
!
!   momentum-report -o FILE   writes the "mass,velocity,momentum" table to
!                             FILE (OPEN unit 10) and one summary line to
!                             stdout
!   momentum-report           writes, into the working directory, table.csv
!                             (the table), summary.csv (rows, total and
!                             largest momentum) and plots/momentum.txt (a
!                             bar chart), and nothing to stdout
!
! Blank lines are skipped. A malformed row is reported on stderr with its
! line number, and the program exits with status 1 after reading all input,
! having written no file.
program momentum_report
  use, intrinsic :: iso_fortran_env, only: input_unit, output_unit, error_unit, iostat_end, real64
  use, intrinsic :: iso_c_binding, only: c_int, c_char, c_null_char
  implicit none
  interface
    ! mkdir(2) from the C library: Fortran has no statement that makes a
    ! directory.
    function c_mkdir(path, mode) bind(c, name='mkdir') result(rc)
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int), value :: mode
      integer(c_int) :: rc
    end function c_mkdir
  end interface
  integer, parameter :: maxrows = 100000, width = 40
  real(real64), allocatable :: mass(:), velocity(:)
  character(len=4096) :: outfile
  integer :: n, i, nargs, ios

  allocate (mass(maxrows), velocity(maxrows))
  outfile = ''
  nargs = command_argument_count()
  if (nargs == 2) then
    call get_command_argument(1, outfile)
    if (outfile /= '-o') call usage()
    call get_command_argument(2, outfile)
  else if (nargs /= 0) then
    call usage()
  end if

  call read_rows(n)

  if (len_trim(outfile) > 0) then
    open (unit=10, file=trim(outfile), status='replace', action='write', iostat=ios)
    if (ios /= 0) call fail('cannot open ' // trim(outfile))
    call write_table(10)
    close (10)
    write (output_unit, '(i0,a,a)') n, ' rows, total momentum ', fmt(total())
    stop
  end if

  open (unit=10, file='table.csv', status='replace', action='write', iostat=ios)
  if (ios /= 0) call fail('cannot open table.csv')
  call write_table(10)
  close (10)
  open (unit=11, file='summary.csv', status='replace', action='write', iostat=ios)
  if (ios /= 0) call fail('cannot open summary.csv')
  write (11, '(a)') 'rows,total_momentum,max_momentum'
  write (11, '(i0,",",a,",",a)') n, fmt(total()), fmt(largest())
  close (11)
  ! An existing plots directory (a warm run's) is fine: the open below
  ! reports a directory that is not usable.
  if (c_mkdir('plots' // c_null_char, int(o'755', c_int)) /= 0) continue
  open (unit=12, file='plots/momentum.txt', status='replace', action='write', iostat=ios)
  if (ios /= 0) call fail('cannot open plots/momentum.txt')
  do i = 1, n
    write (12, '(a10,1x,"|",a,1x,a)') fmt(mass(i)), bar(mass(i) * velocity(i)), fmt(mass(i) * velocity(i))
  end do
  close (12)

contains

  subroutine read_rows(n)
    integer, intent(out) :: n
    character(len=4096) :: line
    integer :: ios, lineno, nbad, comma
    logical :: header_seen
    n = 0
    lineno = 0
    nbad = 0
    header_seen = .false.
    do
      read (input_unit, '(a)', iostat=ios) line
      if (ios == iostat_end) exit
      if (ios /= 0) call fail('read error')
      lineno = lineno + 1
      if (len_trim(line) == 0) cycle
      if (.not. header_seen) then
        header_seen = .true.
        cycle
      end if
      comma = index(line, ',')
      if (comma == 0 .or. n == maxrows) then
        call bad(nbad, lineno, line)
        cycle
      end if
      read (line(1:comma-1), *, iostat=ios) mass(n + 1)
      if (ios == 0) read (line(comma+1:), *, iostat=ios) velocity(n + 1)
      if (ios /= 0) then
        call bad(nbad, lineno, line)
        cycle
      end if
      n = n + 1
    end do
    if (nbad > 0) then
      write (error_unit, '(a,i0,a)') 'momentum-report: ', nbad, ' malformed row(s), no file written'
      call exit(1)
    end if
  end subroutine read_rows

  subroutine bad(nbad, k, text)
    integer, intent(inout) :: nbad
    integer, intent(in) :: k
    character(len=*), intent(in) :: text
    nbad = nbad + 1
    write (error_unit, '(a,i0,a,a,a)') 'momentum-report: line ', k, ': malformed row "', trim(text), '" (want mass,velocity)'
  end subroutine bad

  subroutine write_table(unit)
    integer, intent(in) :: unit
    integer :: i
    write (unit, '(a)') 'mass,velocity,momentum'
    do i = 1, n
      write (unit, '(a,",",a,",",a)') fmt(mass(i)), fmt(velocity(i)), fmt(mass(i) * velocity(i))
    end do
  end subroutine write_table

  real(real64) function total()
    total = sum(mass(1:n) * velocity(1:n))
  end function total

  real(real64) function largest()
    largest = 0
    if (n > 0) largest = maxval(mass(1:n) * velocity(1:n))
  end function largest

  ! bar is a bar of up to width '#', scaled to the largest momentum.
  function bar(p) result(s)
    real(real64), intent(in) :: p
    character(len=width) :: s
    integer :: k
    k = 0
    if (largest() > 0) k = max(0, min(width, nint(width * p / largest())))
    s = repeat('#', k)
  end function bar

  subroutine usage()
    write (error_unit, '(a)') 'usage: momentum-report [-o FILE] < data.csv'
    call exit(2)
  end subroutine usage

  subroutine fail(msg)
    character(len=*), intent(in) :: msg
    write (error_unit, '(a,a)') 'momentum-report: ', msg
    call exit(1)
  end subroutine fail

  ! fmt prints a number compactly: up to 6 decimals, trailing zeros removed.
  function fmt(x) result(s)
    real(real64), intent(in) :: x
    character(len=:), allocatable :: s
    character(len=64) :: buf
    integer :: k
    write (buf, '(f0.6)') x
    s = trim(adjustl(buf))
    k = len(s)
    do while (k > 1 .and. s(k:k) == '0')
      k = k - 1
    end do
    if (s(k:k) == '.') k = k - 1
    s = s(1:k)
    if (s(1:1) == '.') s = '0' // s
    if (len(s) >= 2) then
      if (s(1:2) == '-.') s = '-0' // s(2:)
    end if
  end function fmt
end program momentum_report
